package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// TestSavedPlan: plan --out writes a plan (0600, without the private key
// it carries as a sensitive input); show renders it; apply FILE does
// exactly that plan without asking; the same file applied again, a plan
// whose deployment changed since, and a saved plan given --target are
// refused, changing nothing.
func TestSavedPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	deployment := func(greeting string) string {
		return `{ members, providers, ... }: {
  members.key = { type = providers.ssh-keypair.keypair; };
  members.secret = { type = providers.local.file; inputs = { name = "out/key"; mode = "0600"; contents = members.key.outputs.privateKey; }; };
  members.greeting = { type = providers.local.file; inputs = { name = "out/greeting"; contents = "` + greeting + `"; }; };
}
`
	}
	writeFile(t, dir, "landscaper.nix", deployment("hello"))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	private := readFile(t, dir, "out/key")

	writeFile(t, dir, "landscaper.nix", deployment("hello again"))
	planFile := filepath.Join(dir, "change.plan")
	out, _ := mustRun(t, dir, 0, "plan", "--out", planFile)
	if !strings.Contains(out, "landscaper apply "+planFile) {
		t.Errorf("plan --out does not say how to apply it:\n%s", out)
	}
	fi, err := os.Stat(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the saved plan has mode %o, want 600", fi.Mode().Perm())
	}
	saved := readFile(t, dir, "change.plan")
	if len(testbin.SecretLines(private)) == 0 {
		t.Fatalf("no private key in out/key:\n%s", private)
	}
	for _, line := range testbin.SecretLines(private) {
		if strings.Contains(saved, line) {
			t.Fatalf("the saved plan holds the private key")
		}
	}
	show, _ := mustRun(t, dir, 0, "show", planFile)
	if !strings.Contains(show, "greeting (local.file) will be updated in place") || !strings.Contains(show, `"hello" -> "hello again"`) {
		t.Errorf("show does not render the saved plan:\n%s", show)
	}
	showJSON, _ := mustRun(t, dir, 0, "show", "--json", planFile)
	if !strings.Contains(showJSON, `"member":"greeting"`) || !strings.Contains(showJSON, `"action":"update"`) {
		t.Errorf("show --json:\n%s", showJSON)
	}

	// --target with a saved plan: refused before anything.
	stateBefore := readFile(t, dir, ".landscaper/state.json")
	_, stderr, code := run(t, dir, "apply", "--target", "greeting", planFile)
	if code != 2 || !strings.Contains(stderr, "saved plan") {
		t.Errorf("apply --target FILE: exit %d, want 2 naming the saved plan\n%s", code, stderr)
	}

	// Applied without asking (no terminal, no --auto-approve).
	mustRun(t, dir, 0, "apply", planFile)
	wantFile(t, dir, "out/greeting", "hello again")
	if readFile(t, dir, ".landscaper/state.json") == stateBefore {
		t.Errorf("apply FILE did not record anything")
	}

	// The same plan again: the state moved on.
	stateBefore = readFile(t, dir, ".landscaper/state.json")
	_, stderr, code = run(t, dir, "apply", planFile)
	if code != 1 || !strings.Contains(stderr, "the state changed since") || !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("applying a used plan again: exit %d, want 1 saying the state changed\n%s", code, stderr)
	}

	// A plan whose deployment changed after it was made.
	writeFile(t, dir, "landscaper.nix", deployment("third"))
	mustRun(t, dir, 0, "plan", "--out", planFile)
	writeFile(t, dir, "landscaper.nix", deployment("fourth"))
	_, stderr, code = run(t, dir, "apply", planFile)
	if code != 1 || !strings.Contains(stderr, "member greeting: its planned inputs differ") {
		t.Errorf("applying a plan of an older deployment: exit %d, want 1 naming greeting\n%s", code, stderr)
	}
	wantFile(t, dir, "out/greeting", "hello again")
	if readFile(t, dir, ".landscaper/state.json") != stateBefore {
		t.Errorf("a refused saved plan changed the state")
	}

	// Not a plan.
	writeFile(t, dir, "bogus.plan", `{"format":"something else"}`)
	_, stderr, code = run(t, dir, "show", filepath.Join(dir, "bogus.plan"))
	if code != 1 || !strings.Contains(stderr, "not a plan saved by this Landscaper") {
		t.Errorf("show of another file: exit %d\n%s", code, stderr)
	}
}

// TestSavedPlanFirst: a plan saved before any state exists is applied by
// apply FILE (each command makes a fresh lineage for a state never stored,
// which must not make the plan stale), and refused once a state exists.
func TestSavedPlanFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		applyFirst bool // another apply stores a state between plan and apply FILE
	}{
		{"nothing stored since", false},
		{"a state stored since", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.greeting = { type = providers.local.file; inputs = { name = "out/greeting"; contents = "hello"; }; };
  members.count = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "wc -c < out/greeting" ]; env.H = members.greeting.outputs.sha256; }; };
}
`)
			planFile := filepath.Join(dir, "first.plan")
			mustRun(t, dir, 0, "plan", "--out", planFile)
			if _, err := os.Stat(filepath.Join(dir, ".landscaper", "state.json")); err == nil {
				t.Fatalf("plan --out stored a state")
			}
			if !tc.applyFirst {
				mustRun(t, dir, 0, "apply", planFile)
				wantFile(t, dir, "out/greeting", "hello")
				out, _ := mustRun(t, dir, 0, "plan", "--detailed-exitcode")
				if !strings.Contains(out, "No changes") {
					t.Errorf("the plan after apply FILE:\n%s", out)
				}
				_, stderr, code := run(t, dir, "apply", planFile)
				if code != 1 || !strings.Contains(stderr, "the state changed since") {
					t.Errorf("the first plan applied twice: exit %d, want 1 saying the state changed\n%s", code, stderr)
				}
				return
			}
			mustRun(t, dir, 0, "apply", "--auto-approve")
			stateBefore := readFile(t, dir, ".landscaper/state.json")
			_, stderr, code := run(t, dir, "apply", planFile)
			if code != 1 || !strings.Contains(stderr, "the state changed since") || !strings.Contains(stderr, "nothing was changed") {
				t.Errorf("a plan made before the state existed: exit %d, want 1 saying the state changed\n%s", code, stderr)
			}
			if readFile(t, dir, ".landscaper/state.json") != stateBefore {
				t.Errorf("a refused saved plan changed the state")
			}
		})
	}
}
