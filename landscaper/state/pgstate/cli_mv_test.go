package pgstate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIStateMvAndOutputInPostgreSQL: landscaper state mv and output,
// through the real binary, with the state in PostgreSQL: the member keeps
// its record under its new name, its dependents follow, and the plan with
// the member renamed in the deployment changes nothing.
func TestCLIStateMvAndOutputInPostgreSQL(t *testing.T) {
	u := newDatabase(t)
	dir := t.TempDir()
	write := func(nix string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(nix), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const deployment = `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "after ${members.a.outputs.sha256}"; }; };
}
`
	write(deployment)
	if out, code := runLandscaper(t, dir, u, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	shaA, code := runLandscaper(t, dir, u, "output", "--raw", "a.sha256")
	if code != 0 || len(shaA) != 64 {
		t.Fatalf("output --raw a.sha256: exit %d, %q", code, shaA)
	}

	if out, code := runLandscaper(t, dir, u, "state", "mv", "a", "b"); code != 1 || !strings.Contains(out, `member "b" exists`) {
		t.Errorf("state mv onto an existing member: exit %d\n%s", code, out)
	}
	if out, code := runLandscaper(t, dir, u, "state", "mv", "a", "first"); code != 0 || !strings.Contains(out, "The dependencies of b now name first.") {
		t.Fatalf("state mv: exit %d\n%s", code, out)
	}
	out, _ := runLandscaper(t, dir, u, "state", "show", "b")
	if !strings.Contains(out, `"first"`) || strings.Contains(out, `"a"`) {
		t.Errorf("b's dependencies after the move:\n%s", out)
	}
	if got, code := runLandscaper(t, dir, u, "output", "--raw", "first.sha256"); code != 0 || got != shaA {
		t.Errorf("output --raw first.sha256: exit %d, %q, want %q", code, got, shaA)
	}
	if out, code := runLandscaper(t, dir, u, "output", "a"); code != 1 || !strings.Contains(out, `no member "a"`) {
		t.Errorf("output a after the move: exit %d\n%s", code, out)
	}

	write(strings.ReplaceAll(deployment, "members.a", "members.first"))
	if out, code := runLandscaper(t, dir, u, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan with the member renamed in the deployment too: exit %d, want 0 (no changes)\n%s", code, out)
	}
}
