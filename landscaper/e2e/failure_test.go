package e2e

import (
	"strings"
	"testing"
)

const failingDeployment = `{ members, providers, ... }: {
  members.bad = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "echo boom >&2; exit 3" ]; }; };
  members.indep = { type = providers.local.file; inputs = { name = "out/indep"; contents = "independent\n"; }; };
  members.dep = { type = providers.local.file; inputs = { name = "out/dep"; contents = "after ${members.bad.outputs.stdout}"; }; };
  members.grp.members.depdep = { type = providers.local.file; inputs = { name = "out/depdep"; contents = members.dep.outputs.sha256; }; };
  members.computed = { type = providers.local.file; inputs = { name = "out/computed"; contents = builtins.hashString "sha256" members.bad.outputs.stdout; }; };
}
`

// TestFailingExec: a failing command fails its member, skips what depends
// on it, and leaves independent members alone.
func TestFailingExec(t *testing.T) {
	t.Parallel()
	dependents := []string{"computed", "dep", "grp.depdep"}
	check := func(t *testing.T, dir string, stdout, stderr string) {
		t.Helper()
		if !strings.Contains(stderr, "bad") || !strings.Contains(stderr, "boom") || !strings.Contains(stderr, "exit status 3") {
			t.Errorf("stderr does not name bad, its exit status and its stderr:\n%s", stderr)
		}
		evs := events(t, stdout)
		if i := index(evs, "failed", "bad"); i < 0 || !strings.Contains(evs[i].Message, "boom") {
			t.Errorf("no failed event for bad showing boom")
		}
		if got := membersWith(evs, "skipped"); !sameStrings(got, dependents) {
			t.Errorf("skipped = %v, want %v", got, dependents)
		}
		if got := membersWith(evs, "started"); !sameStrings(got, []string{"bad"}) && !sameStrings(got, []string{"bad", "indep"}) {
			t.Errorf("started = %v: only bad and indep may start", got)
		}
		s, ok := summaryOf(evs)
		if !ok || !sameStrings(s.Failed, []string{"bad"}) || !sameStrings(s.Skipped, dependents) {
			t.Errorf("summary = %+v", s)
		}
		wantFile(t, dir, "out/indep", "independent\n")
		for _, f := range []string{"out/dep", "out/depdep", "out/computed"} {
			wantNoFile(t, dir, f)
		}
		if got := stateMembers(t, dir); !sameStrings(got, []string{"indep"}) {
			t.Errorf("state = %v, want only indep", got)
		}
	}

	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", failingDeployment)
	stdout, stderr, code := run(t, dir, "apply", "--auto-approve", "--json")
	if code == 0 {
		t.Fatalf("apply with a failing command exited 0\n%s", stdout)
	}
	check(t, dir, stdout, stderr)
	if s, _ := summaryOf(events(t, stdout)); s.Created != 1 {
		t.Errorf("summary created %d, want 1 (indep)", s.Created)
	}

	// Again: bad fails again, indep is not touched.
	snap := snapshot(t, dir, "out")
	stdout, stderr, code = run(t, dir, "apply", "--auto-approve", "--json")
	if code == 0 {
		t.Fatalf("second apply with a failing command exited 0\n%s", stdout)
	}
	check(t, dir, stdout, stderr)
	if !untouched(t, dir, snap["out/indep"], "out/indep") {
		t.Errorf("second apply rewrote out/indep")
	}

	// The plain text output says the same.
	stdout, stderr, code = run(t, dir, "apply", "--auto-approve")
	if code == 0 || !strings.Contains(stdout, "bad") || !strings.Contains(stdout, "boom") || !strings.Contains(stdout, "skipped") {
		t.Errorf("text apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	mustRun(t, dir, 2, "plan", "--detailed-exitcode")

	// Fixing the command lets everything through.
	writeFile(t, dir, "landscaper.nix", strings.Replace(failingDeployment, "echo boom >&2; exit 3", "echo fixed", 1))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	wantFile(t, dir, "out/dep", "after fixed\n")
	wantFile(t, dir, "out/depdep", sha256Hex("after fixed\n"))
	wantFile(t, dir, "out/computed", sha256Hex("fixed\n"))
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")
}
