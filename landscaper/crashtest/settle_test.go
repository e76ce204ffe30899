package crashtest

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"
)

// A kill that lands after a provider made a resource but before the
// engine saved the result leaves the pending create the engine wrote before
// it started, and no record of the resource. The next run asks the provider
// (Read), finds the resource and adopts it. The kill lands in a window of a
// few milliseconds, so these tests write that state by hand.

// killedAfterCreate rewrites the state in dir as a kill would have left it
// just after the create of name finished.
func killedAfterCreate(t *testing.T, dir, name string) {
	t.Helper()
	raw, err := os.ReadFile(statePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	resources := doc["resources"].(map[string]any)
	rec, ok := resources[name].(map[string]any)
	if !ok {
		t.Fatalf("no record of %s in the state", name)
	}
	delete(resources, name)
	doc["pending"] = map[string]any{name: map[string]any{
		"operation": "create", "type": rec["type"], "provider": rec["provider"],
		"inputs": rec["inputs"], "since": time.Now().UTC().Format(time.RFC3339Nano),
	}}
	raw, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, statePath(dir), string(raw))
}

// settledIn reports whether a run's --json output says it settled the
// interrupted operation of name.
func settledIn(stdout, name string) bool {
	for _, ev := range jsonLines(stdout) {
		if ev.Kind == "info" && ev.Member == name {
			return true
		}
	}
	return false
}

// TestSettledCreateIsSaved: an apply that settles an interrupted create
// and has nothing else to do must still save what it found: the resource
// recorded, the pending record gone.
func TestSettledCreateIsSaved(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	deployment(t, dir, "", file("only", "out/only", "only\n"))
	mustSucceed(t, bin, dir, "apply", "--auto-approve")
	killedAfterCreate(t, dir, "only")

	r := mustSucceed(t, bin, dir, "apply", "--auto-approve", "--json")
	if !settledIn(r.stdout, "only") {
		t.Errorf("the apply did not report settling the interrupted create of only:\n%s", r)
	}
	st := mustReadState(t, dir)
	if _, ok := st.Resources["only"]; !ok || len(st.Pending) != 0 {
		t.Errorf("after an apply that settled the interrupted create of only and had nothing else to do, the state file records %v with %v pending; want only recorded and nothing pending (cli runApply returns before Apply when the plan has no changes, so what recoverPending settled in memory is never written)", keys(st.Resources), keys(st.Pending))
	}
	if listed := stateList(t, bin, dir); listed["only"] != "local.file" {
		t.Errorf("state list after the apply does not show only as recorded: %v", listed)
	}
	planClean(t, bin, dir)
}

// TestSettledCreateKeepsDependencies: the record adopted for an
// interrupted create must still say what the member depends on: destroy
// orders deletions by it, and `destroy --target` finds by it the dependents
// to delete too.
func TestSettledCreateKeepsDependencies(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	base := file("base", "out/base", "base\n")
	dependent := member{"dependent", `{ type = providers.local.file; inputs = { name = "out/dependent"; contents = "base is ${members.base.outputs.sha256}\n"; }; }`}
	deployment(t, dir, "", base, dependent)
	mustSucceed(t, bin, dir, "apply", "--auto-approve")
	st := mustReadState(t, dir)
	if deps := st.Resources["dependent"].Dependencies; !slices.Contains(deps, "base") {
		t.Fatalf("after a normal apply the state records the dependencies of dependent as %v, want base among them", deps)
	}
	killedAfterCreate(t, dir, "dependent")

	// A new member gives the apply something to do, so it saves the
	// state whatever it settled.
	deployment(t, dir, "", base, dependent, file("extra", "out/extra", "extra\n"))
	r := mustSucceed(t, bin, dir, "apply", "--auto-approve", "--json")
	if !settledIn(r.stdout, "dependent") {
		t.Errorf("the apply did not report settling the interrupted create of dependent:\n%s", r)
	}
	planClean(t, bin, dir)
	st = mustReadState(t, dir)
	if len(st.Pending) != 0 {
		t.Errorf("pending records left: %v", keys(st.Pending))
	}
	if deps := st.Resources["dependent"].Dependencies; !slices.Contains(deps, "base") {
		t.Errorf("after settling an interrupted create, the state records the dependencies of dependent as %v, want base among them (engine/refresh.go recoverPending adopts the resource without them, and a no-op plan never records them again)", deps)
	}

	// What that breaks: destroying base must destroy what depends on it.
	mustSucceed(t, bin, dir, "destroy", "--auto-approve", "--target", "base")
	mustNotExist(t, dir, "out/base")
	mustExist(t, dir, "out/extra")
	if st := mustReadState(t, dir); st.Resources["dependent"].Type != "" {
		t.Errorf("destroy --target base left dependent, which depends on base, in the state")
	}
	mustNotExist(t, dir, "out/dependent")
}
