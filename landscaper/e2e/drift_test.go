package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDrift: files deleted or edited behind landscaper's back are planned
// again and restored by apply.
func TestDrift(t *testing.T) {
	t.Parallel()
	const deployment = `{ members, providers, ... }: {
  members.gone = { type = providers.local.file; inputs = { name = "out/gone"; contents = "gone\n"; }; };
  members.edited = { type = providers.local.file; inputs = { name = "out/edited"; contents = "edited\n"; }; };
  members.user = { type = providers.local.file; inputs = { name = "out/user"; contents = "uses ${members.gone.outputs.sha256}\n"; }; };
  members.steady = { type = providers.local.file; inputs = { name = "out/steady"; contents = "steady\n"; }; };
}
`
	cases := []struct {
		name string
		// tamper changes the files; changed are the members then planned.
		tamper  func(t *testing.T, dir string)
		changed map[string]string
	}{
		{
			name: "deleted",
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "out/gone")); err != nil {
					t.Fatal(err)
				}
			},
			changed: map[string]string{"gone": "create"},
		},
		{
			name: "edited",
			tamper: func(t *testing.T, dir string) {
				writeFile(t, dir, "out/edited", "tampered\n")
			},
			changed: map[string]string{"edited": "update"},
		},
		{
			name: "both",
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "out/gone")); err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, "out/edited", "tampered\n")
			},
			changed: map[string]string{"gone": "create", "edited": "update"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "landscaper.nix", deployment)
			mustRun(t, dir, 0, "apply", "--auto-approve")
			applied := snapshot(t, dir, "out")
			c.tamper(t, dir)

			// Without refresh the state is trusted: no changes seen.
			mustRun(t, dir, 0, "plan", "-refresh=false", "--detailed-exitcode")
			mustRun(t, dir, 2, "plan", "--detailed-exitcode")
			out, _ := mustRun(t, dir, 0, "plan", "--json")
			p := planOf(t, events(t, out))
			for member, action := range actions(p) {
				want := c.changed[member]
				if want == "" {
					want = "no-op"
				}
				if action != want {
					t.Errorf("plan: %s %s, want %s", member, action, want)
				}
			}
			if len(p.Drift) != len(c.changed) {
				t.Errorf("plan drift = %q, want one line for each of %v", p.Drift, c.changed)
			}
			for member := range c.changed {
				found := false
				for _, d := range p.Drift {
					found = found || strings.HasPrefix(d, member+" ")
				}
				if !found {
					t.Errorf("plan drift %q does not mention %s", p.Drift, member)
				}
			}

			out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
			var want []string
			for m := range c.changed {
				want = append(want, m)
			}
			if got := membersWith(events(t, out), "started"); !sameStrings(got, want) {
				t.Errorf("apply started %v, want %v", got, want)
			}
			for name, snap := range applied {
				wantFile(t, dir, name, snap.contents)
			}
			for _, name := range []string{"out/user", "out/steady"} {
				if !untouched(t, dir, applied[name], name) {
					t.Errorf("%s was rewritten", name)
				}
			}
			mustRun(t, dir, 0, "plan", "--detailed-exitcode")
		})
	}
}
