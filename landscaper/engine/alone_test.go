package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestEvaluatedAlone: a member whose inputs computed with outputs when it
// was last planned is evaluated alone with the recorded outputs; whatever
// the deployment's edit, the plan and the apply give it the inputs that a
// fresh evaluation gives, and the state says whether it still computes
// with outputs.
func TestEvaluatedAlone(t *testing.T) {
	ctx := t.Context()
	bin := localProvider(t)
	const before = `{ members, providers, ... }: {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "v1" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = builtins.hashString "sha256" members.src.outputs.stdout; }; };
}
`
	for _, tc := range []struct {
		name, after string
		// from replaces the first deployment.
		from string
		// want is out/h's contents after the apply of after.
		want     string
		computes bool
	}{
		{
			name:     "nothing changes",
			after:    before,
			want:     sha256Hex("v1"),
			computes: true,
		},
		{
			name: "the output is known only after apply",
			after: `{ members, providers, ... }: {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "v2" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = builtins.hashString "sha256" members.src.outputs.stdout; }; };
}
`,
			want:     sha256Hex("v2"),
			computes: true,
		},
		{
			name: "it parses an output known only after apply",
			from: `{ members, providers, ... }: {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "{\"n\":1}" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = toString (builtins.fromJSON members.src.outputs.stdout).n; }; };
}
`,
			after: `{ members, providers, ... }: {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "{\"n\":2}" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = toString (builtins.fromJSON members.src.outputs.stdout).n; }; };
}
`,
			want:     "2",
			computes: true,
		},
		{
			name: "it computes with a new member's output too",
			after: `{ members, providers, ... }: {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "v1" ]; }; };
  members.extra = { type = providers.local.file; inputs = { name = "out/extra"; contents = "x"; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = builtins.hashString "sha256" (members.src.outputs.stdout + members.extra.outputs.sha256); }; };
}
`,
			want:     sha256Hex("v1" + sha256Hex("x")),
			computes: true,
		},
		{
			name: "it no longer uses an output",
			after: `{ members, providers, ... }: {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "v1" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = "plain"; }; };
}
`,
			want:     "plain",
			computes: false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			apply := func(text string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				e := openLocal(t, dir, bin)
				plan, err := e.Plan(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.Apply(ctx, plan); err != nil {
					t.Fatal(err)
				}
				e.Close()
			}
			first := before
			if tc.from != "" {
				first = tc.from
			}
			apply(first)
			if st := readState(t, dir); !st.Resources["h"].ComputesWithOutputs {
				t.Fatalf("after the first apply, h is not marked as computing with outputs")
			}
			apply(tc.after)
			got, err := os.ReadFile(filepath.Join(dir, "out", "h"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("out/h holds %q, want %q", got, tc.want)
			}
			if st := readState(t, dir); st.Resources["h"].ComputesWithOutputs != tc.computes {
				t.Errorf("h marked as computing with outputs: %v, want %v", st.Resources["h"].ComputesWithOutputs, tc.computes)
			}
			e := openLocal(t, dir, bin)
			plan, err := e.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if plan.HasChanges() {
				t.Errorf("the plan after the apply has changes: %+v", plan.Changes)
			}
		})
	}
}

func readState(t *testing.T, dir string) *state.State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".landscaper", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
