package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestPromisedOutputs: a provider whose result contradicts an output it
// promised while planning fails its member with an error naming the
// provider and the output; what it made is recorded as it is, the member
// planned with the promised value is not applied, and the next plan uses
// the real value.
func TestPromisedOutputs(t *testing.T) {
	bin := buildTestProvider(t, "liarprovider", "liar")
	for _, tc := range []struct {
		name    string
		lie     bool
		wantErr string
	}{
		{"kept", false, ""},
		{"broken", true, "provider liar produced an inconsistent result: output digest is not the value its plan promised"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lie := map[bool]string{false: "false", true: "true"}[tc.lie]
			deployment := `{ members, providers, ... }: {
  members.a = { type = providers.liar.note; inputs = { text = "hello"; lie = ` + lie + `; }; };
  members.b = { type = providers.liar.note; inputs.text = "a said " + members.a.outputs.digest; };
}
`
			if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(deployment), 0o644); err != nil {
				t.Fatal(err)
			}
			statePath := filepath.Join(dir, ".landscaper", "state.json")
			open := func() *Engine { return openWithProvider(t, dir, "liar", bin, false) }
			e := open()
			plan, err := e.Plan(t.Context())
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			promised := hexDigest("hello")
			var planned string
			for _, c := range plan.Changes {
				if c.Member == "b" {
					planned = string(c.Inputs)
				}
			}
			if !strings.Contains(planned, "a said "+promised) {
				t.Fatalf("b is not planned with a's promised digest: %s", planned)
			}
			summary, err := e.Apply(t.Context(), plan)
			if err == nil {
				err = errors.Join(summary.Errors...)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("apply: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "member a")):
				t.Fatalf("apply: %v, want an error of member a saying %q", err, tc.wantErr)
			}
			e.Close()

			st, err := state.NewFile(statePath).Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			a := st.Resources["a"]
			if a == nil {
				t.Fatal("a is not recorded")
			}
			real := hexDigest("hello")
			if tc.lie {
				real = hexDigest("hello (not what was promised)")
			}
			if !strings.Contains(string(a.Outputs), real) {
				t.Errorf("a recorded with %s, want its digest %s", a.Outputs, real)
			}
			b := st.Resources["b"]
			if tc.lie != (b == nil) {
				t.Fatalf("b recorded: %v, want %v", b != nil, !tc.lie)
			}
			if !tc.lie {
				return
			}
			// The next plan creates b with what a really holds.
			plan, err = open().Plan(t.Context())
			if err != nil {
				t.Fatalf("plan again: %v", err)
			}
			for _, c := range plan.Changes {
				switch c.Member {
				case "a":
					if c.Action != resource.ActionNoop {
						t.Errorf("a planned %v, want no-op", c.Action)
					}
				case "b":
					if c.Action != resource.ActionCreate || !strings.Contains(string(c.Inputs), "a said "+real) {
						t.Errorf("b planned %v with %s, want create with a's real digest", c.Action, c.Inputs)
					}
				}
			}
		})
	}
}
