package e2e

import (
	"fmt"
	"strconv"
	"testing"
)

// sleepers is a deployment of n commands sleeping secs each.
func sleepers(n int, secs string) string {
	return fmt.Sprintf(`{ members, providers, ... }: {
  members.s.members = builtins.listToAttrs (builtins.genList
    (i: { name = "n${toString i}"; value = { type = providers.local.exec; inputs = { executable = "sleep"; args = [ %q ]; }; }; })
    %d);
}
`, secs, n)
}

// concurrency replays started/done/failed events and returns the most
// members running at once.
func concurrency(t *testing.T, evs []event) int {
	t.Helper()
	running := map[string]bool{}
	most := 0
	for _, ev := range evs {
		switch ev.Kind {
		case "started":
			if running[ev.Member] {
				t.Errorf("%s started twice", ev.Member)
			}
			running[ev.Member] = true
		case "done", "failed":
			if !running[ev.Member] {
				t.Errorf("%s %s without having started", ev.Member, ev.Kind)
			}
			delete(running, ev.Member)
		}
		most = max(most, len(running))
	}
	if len(running) != 0 {
		t.Errorf("still running at the end: %v", running)
	}
	return most
}

// TestParallelism: --parallelism bounds how many operations run at once,
// and operations do run at the same time.
func TestParallelism(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		n           int
		secs        string
		parallelism int
	}{
		{"five", 20, "0.5", 5},
		{"one", 4, "0.2", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "landscaper.nix", sleepers(c.n, c.secs))
			p := strconv.Itoa(c.parallelism)
			out, _ := mustRun(t, dir, 0, "apply", "--auto-approve", "--json", "--parallelism", p)
			evs := events(t, out)
			if got := membersWith(evs, "done"); len(got) != c.n {
				t.Errorf("%d members done, want %d", len(got), c.n)
			}
			most := concurrency(t, evs)
			if most > c.parallelism {
				t.Errorf("%d members ran at once with --parallelism %d", most, c.parallelism)
			}
			if c.parallelism > 1 && most < 2 {
				t.Errorf("at most %d member ran at once with --parallelism %d: nothing ran in parallel", most, c.parallelism)
			}
			if c.parallelism == 1 && most != 1 {
				t.Errorf("at most %d members ran at once with --parallelism 1", most)
			}
			// Destroy obeys the bound too (these commands have no destroy
			// command, so this only checks the ordering of events).
			out, _ = mustRun(t, dir, 0, "destroy", "--auto-approve", "--json", "--parallelism", p)
			evs = events(t, out)
			if got := membersWith(evs, "done"); len(got) != c.n {
				t.Errorf("destroy: %d members done, want %d", len(got), c.n)
			}
			if most := concurrency(t, evs); most > c.parallelism {
				t.Errorf("destroy: %d members ran at once with --parallelism %d", most, c.parallelism)
			}
		})
	}
}

// TestDestroyIndependentMembers: destroy deletes independent members in
// parallel; with the race detector on (go test -race builds the binaries
// with it), a data race in the engine makes the binary exit 66.
func TestDestroyIndependentMembers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.f.members = builtins.listToAttrs (builtins.genList
    (i: { name = "n${toString i}"; value = { type = providers.local.file; inputs = { name = "out/f${toString i}"; contents = toString i; }; }; })
    8);
}
`)
	mustRun(t, dir, 0, "apply", "--auto-approve")
	if got := snapshot(t, dir, "out"); len(got) != 8 {
		t.Fatalf("apply made %d files, want 8", len(got))
	}
	out, _ := mustRun(t, dir, 0, "destroy", "--auto-approve", "--json", "--parallelism", "8")
	if got := membersWith(events(t, out), "done"); len(got) != 8 {
		t.Errorf("destroy finished %v, want 8 members", got)
	}
	if got := snapshot(t, dir, "out"); len(got) != 0 {
		t.Errorf("files left after destroy: %v", keys(got))
	}
	if got := stateMembers(t, dir); len(got) != 0 {
		t.Errorf("state after destroy: %v", got)
	}
}
