package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// upgradeDeployment has a note and a second note made of the first one's
// digest, an output that schema version 0 of vers.note called "hash".
const upgradeDeployment = `{ members, providers, ... }: {
  members.greeting = { type = providers.vers.note; inputs.text = "hello"; };
  members.copy = { type = providers.vers.note; inputs.text = members.greeting.outputs.digest; };
}
`

func hexDigest(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// writeVersion0State writes the state file as a landscaper from before
// schema versions recorded upgradeDeployment: no schemaVersion, and the
// output under its old name.
func writeVersion0State(t *testing.T, path string) {
	t.Helper()
	st := state.New()
	note := func(text string) *state.Resource {
		return &state.Resource{
			Type: "vers.note", Provider: "vers",
			Inputs:  json.RawMessage(`{"text":"` + text + `"}`),
			Outputs: json.RawMessage(`{"hash":"` + hexDigest(text) + `"}`),
		}
	}
	st.Resources["greeting"] = note("hello")
	st.Resources["copy"] = note(hexDigest("hello"))
	st.Resources["copy"].Dependencies = []string{"greeting"}
	if err := state.NewFile(path).Write(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || strings.Contains(string(b), "schemaVersion") {
		t.Fatalf("the version 0 state file says a schema version (or is unreadable: %v):\n%s", err, b)
	}
}

// TestRecordedStateUpgradedByTheProvider: a state recorded at schema
// version 0 plans as a no-op with the provider at version 1, without
// drift, with the output under its new name; the apply records version 1.
func TestRecordedStateUpgradedByTheProvider(t *testing.T) {
	bin := buildTestProvider(t, "upgradeprovider", "vers")
	for _, noRefresh := range []bool{false, true} {
		name := map[bool]string{false: "refreshed", true: "not refreshed"}[noRefresh]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(upgradeDeployment), 0o644); err != nil {
				t.Fatal(err)
			}
			statePath := filepath.Join(dir, ".landscaper", "state.json")
			writeVersion0State(t, statePath)
			open := func() *Engine { return openWithProvider(t, dir, "vers", bin, noRefresh) }
			e := open()
			plan, err := e.Plan(t.Context())
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if len(plan.Drift) > 0 {
				t.Errorf("the upgrade was taken for drift: %v", plan.Drift)
			}
			for _, c := range plan.Changes {
				if c.Action != resource.ActionNoop {
					t.Errorf("%s: %v (changed %v), want no-op", c.Member, c.Action, c.Changed)
				}
			}
			if _, err := e.Apply(t.Context(), plan); err != nil {
				t.Fatalf("apply: %v", err)
			}
			e.Close()

			st, err := state.NewFile(statePath).Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"greeting", "copy"} {
				r := st.Resources[m]
				if r == nil {
					t.Fatalf("%s is no longer recorded", m)
				}
				// Without a refresh nothing asks the provider for the
				// upgraded state: the record stays at version 0, and every
				// call upgrades it again.
				want, wantOutputs := int64(1), `{"digest":"`
				if noRefresh {
					want, wantOutputs = 0, `{"hash":"`
				}
				if r.SchemaVersion != want || !strings.HasPrefix(string(r.Outputs), wantOutputs) {
					t.Errorf("%s recorded at schema version %d with outputs %s, want version %d with %s...", m, r.SchemaVersion, r.Outputs, want, wantOutputs)
				}
			}
		})
	}
}
