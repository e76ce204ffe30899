package crashtest

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
)

// TestInterruptedPendingOnlyStarted: an apply writes the pending records
// of the operations whose inputs are known before any starts; after Ctrl-C
// only those whose operation had started stay (one slot, --parallelism 1,
// is taken by a create that ignores cancellation; the others never start).
// `state list` shows only that one as interrupted, and the next plan
// settles it alone and writes nothing.
func TestInterruptedPendingOnlyStarted(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	members := func(behaviour string) []member {
		return []member{
			item("stuck1", "out/stuck1", behaviour),
			item("stuck2", "out/stuck2", behaviour),
			item("stuck3", "out/stuck3", behaviour),
			file("fileA", "out/fileA", "a\n"),
		}
	}
	deployment(t, dir, "", members(testprovider.BehaviourStuck)...)
	run := start(t, bin, dir, "apply", "--auto-approve", "--json", "--parallelism", "1")
	first := run.waitFor("a stuck member to start", 2*time.Minute, func(ev event) bool {
		return ev.Kind == "started" && strings.HasPrefix(ev.Member, "stuck")
	})
	run.signal(syscall.SIGINT)
	if res := run.wait(exitWithin); res.code == 0 {
		t.Errorf("interrupted apply: want a non-zero exit, got %s", res)
	}
	noStrayPlugins(t, bin, "after the interrupt")

	started := membersWith(run.seen(), "started")
	st := mustReadState(t, dir)
	if got := keys(st.Pending); !slices.Equal(got, []string{first.Member}) {
		t.Errorf("pending records for %v, want only %s, whose create started (started: %v)", got, first.Member, keys(started))
	}
	listed := landscaper(t, bin, dir, "state", "list")
	for _, line := range strings.Split(listed.stdout, "\n") {
		if strings.Contains(line, "interrupted") && !strings.HasPrefix(line, first.Member+"\t") {
			t.Errorf("state list shows as interrupted a member whose operation never started: %q", line)
		}
	}
	if !strings.Contains(listed.stdout, first.Member) {
		t.Errorf("state list does not show %s, interrupted:\n%s", first.Member, listed)
	}

	before, err := os.ReadFile(statePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	deployment(t, dir, "", members(testprovider.BehaviourOK)...)
	plan := landscaper(t, bin, dir, "plan", "--json")
	if plan.code != 0 {
		t.Fatalf("plan after the interrupt: %s", plan)
	}
	for _, m := range []string{"stuck1", "stuck2", "stuck3", "fileA"} {
		if got, want := settledIn(plan.stdout, m), m == first.Member; got != want {
			t.Errorf("the plan settled %s: %v, want %v", m, got, want)
		}
	}
	if after, err := os.ReadFile(statePath(dir)); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the plan rewrote the state (%v)", err)
	}
	mustSucceed(t, bin, dir, "apply", "--auto-approve")
	mustExist(t, dir, "out/stuck1", "out/stuck2", "out/stuck3", "out/fileA")
	planClean(t, bin, dir)
}
