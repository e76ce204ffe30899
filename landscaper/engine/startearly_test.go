package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// TestStartEarly opens engines that start the providers and evaluate the
// declarations while the state is read (Options.StartEarly, what plan and
// apply ask for) and compares what they do with engines that start them in
// Plan: the same plan, the same errors, and after a state that cannot be
// read, no provider left running and the lock released.
func TestStartEarly(t *testing.T) {
	bin := localProvider(t)
	for _, tc := range []struct {
		name       string
		deployment string
		state      string // written as the state file when set
		wantOpen   string // an error Open must return
		wantPlan   string // an error Plan must return
		wantRoll   int    // rollouts planned
	}{
		{
			name: "a deployment with a rollout",
			deployment: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "${members.a.outputs.sha256}"; }; };
  rollouts.files = { members = [ "a" ]; };
}`,
			wantRoll: 1,
		},
		{
			name:       "a deployment that does not evaluate",
			deployment: `{ members, providers, ... }: { members.a = { type = providers.local.file; inputs = throw "no inputs here"; }; providers.x = 1; }`,
			wantPlan:   "providers.x",
		},
		{
			name:       "a state that cannot be read",
			deployment: `{ members, providers, ... }: { }`,
			state:      "{ not json",
			wantOpen:   "read state",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var results [2]string
			for i, early := range []bool{false, true} {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(tc.deployment), 0o644); err != nil {
					t.Fatal(err)
				}
				stateFile := filepath.Join(dir, ".landscaper", "state.json")
				if tc.state != "" {
					if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(stateFile, []byte(tc.state), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				opts := Options{
					Source:     eval.Source{File: filepath.Join(dir, "landscaper.nix")},
					Backend:    state.NewFile(stateFile),
					Builtins:   map[string]string{"local": bin},
					Dir:        dir,
					StartEarly: early,
				}
				e, err := Open(t.Context(), opts)
				if tc.wantOpen != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantOpen) {
						t.Fatalf("early %v: Open: %v, want an error about %q", early, err, tc.wantOpen)
					}
					// Plan a deployment that evaluates, long enough for a
					// provider begun by the failed Open to show: only this
					// engine's provider may run.
					good := openLocal(t, t.TempDir(), bin)
					if err := os.WriteFile(filepath.Join(good.opts.Dir, "landscaper.nix"), []byte(tc.deployment), 0o644); err != nil {
						t.Fatal(err)
					}
					if _, err := good.Plan(t.Context()); err != nil {
						t.Fatal(err)
					}
					if n := running(t, bin); n != 1 {
						t.Errorf("early %v: %d provider processes while one engine runs after a failed Open, want 1", early, n)
					}
					good.Close()
					// The lock is free: a second Open fails the same way, not on the lock.
					if _, err := Open(t.Context(), opts); err == nil || !strings.Contains(err.Error(), tc.wantOpen) {
						t.Errorf("early %v: Open again: %v, want an error about %q", early, err, tc.wantOpen)
					}
					results[i] = strings.ReplaceAll(err.Error(), dir, "DIR")
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				plan, err := e.Plan(t.Context())
				if n := running(t, bin); n != 1 {
					t.Errorf("early %v: %d provider processes while the engine runs, want 1", early, n)
				}
				e.Close()
				if n := running(t, bin); n != 0 {
					t.Errorf("early %v: %d provider processes left after Close", early, n)
				}
				if tc.wantPlan != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantPlan) {
						t.Fatalf("early %v: Plan: %v, want an error about %q", early, err, tc.wantPlan)
					}
					results[i] = strings.ReplaceAll(err.Error(), dir, "DIR")
					continue
				}
				if err != nil {
					t.Fatalf("early %v: %v", early, err)
				}
				var shown []string
				for _, c := range plan.Changes {
					shown = append(shown, c.Member+" "+c.Action.String()+" "+string(c.Inputs))
				}
				if len(plan.Rollouts) != tc.wantRoll {
					t.Errorf("early %v: %d rollouts planned, want %d", early, len(plan.Rollouts), tc.wantRoll)
				}
				results[i] = strings.ReplaceAll(strings.Join(shown, "\n"), dir, "DIR")
			}
			if results[0] != results[1] {
				t.Errorf("started in Plan:\n%s\nstarted early:\n%s", results[0], results[1])
			}
		})
	}
}

// running counts the processes running the executable bin.
func running(t *testing.T, bin string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if exe, err := os.Readlink(filepath.Join("/proc", en.Name(), "exe")); err == nil && exe == bin {
			n++
		}
	}
	return n
}
