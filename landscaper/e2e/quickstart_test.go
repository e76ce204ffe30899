package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quickstart returns a deployment: greeting (fixed contents), copy (quotes
// greeting's sha256), group.inner (a nested member quoting copy's sha256)
// and, unless otherFile is empty, an independent member other writing
// otherFile.
func quickstart(greeting, otherFile string) string {
	var b strings.Builder
	b.WriteString("{ members, providers, ... }: {\n")
	fmt.Fprintf(&b, "  members.greeting = { type = providers.local.file; inputs = { name = \"out/greeting.txt\"; contents = %q; }; };\n", greeting)
	b.WriteString(`  members.copy = { type = providers.local.file; inputs = { name = "out/copy.txt"; contents = "sha: ${members.greeting.outputs.sha256}\n"; }; };` + "\n")
	b.WriteString(`  members.group.members.inner = { type = providers.local.file; inputs = { name = "out/group/inner.txt"; contents = "inner: ${members.copy.outputs.sha256}"; mode = "0600"; }; };` + "\n")
	if otherFile != "" {
		fmt.Fprintf(&b, "  members.other = { type = providers.local.file; inputs = { name = %q; contents = \"other\\n\"; }; };\n", otherFile)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestQuickstartFlow walks the life of a small deployment: create, no-op,
// edit, remove a member, destroy.
func TestQuickstartFlow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", quickstart("hello\n", "out/other.txt"))

	// 1. The first apply creates everything, in dependency order.
	out, _ := mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs := events(t, out)
	if got := actions(planOf(t, evs)); len(got) != 4 || got["greeting"] != "create" || got["copy"] != "create" || got["group.inner"] != "create" || got["other"] != "create" {
		t.Errorf("first plan = %v, want four creates", got)
	}
	if got := membersWith(evs, "done"); !sameStrings(got, []string{"copy", "greeting", "group.inner", "other"}) {
		t.Errorf("members done = %v", got)
	}
	if s, ok := summaryOf(evs); !ok || s.Created != 4 {
		t.Errorf("summary = %+v (found %v), want 4 created", s, ok)
	}
	requireOrder(t, evs, "done", "greeting", "started", "copy")
	requireOrder(t, evs, "done", "copy", "started", "group.inner")

	greetingSHA := sha256Hex("hello\n")
	copyContents := "sha: " + greetingSHA + "\n"
	wantFile(t, dir, "out/greeting.txt", "hello\n")
	wantFile(t, dir, "out/copy.txt", copyContents)
	wantFile(t, dir, "out/group/inner.txt", "inner: "+sha256Hex(copyContents))
	wantFile(t, dir, "out/other.txt", "other\n")
	if info, err := os.Stat(filepath.Join(dir, "out/group/inner.txt")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("out/group/inner.txt mode: %v %v, want 0600", info, err)
	}
	checkStatePerms(t, dir)
	if got := stateMembers(t, dir); !sameStrings(got, []string{"copy", "greeting", "group.inner", "other"}) {
		t.Errorf("state list = %v", got)
	}

	// 2. A second apply changes nothing; plan agrees.
	before := snapshot(t, dir, "out")
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs = events(t, out)
	if p := planOf(t, evs); p.Add+p.Change+p.Destroy != 0 {
		t.Errorf("second apply planned changes: %+v", p.Changes)
	}
	if got := membersWith(evs, "started"); len(got) != 0 {
		t.Errorf("second apply started %v", got)
	}
	for name, snap := range before {
		if !untouched(t, dir, snap, name) {
			t.Errorf("second apply rewrote %s", name)
		}
	}
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")

	// 3. Editing greeting changes greeting and what depends on it, only.
	writeFile(t, dir, "landscaper.nix", quickstart("hello, world\n", "out/other.txt"))
	mustRun(t, dir, 2, "plan", "--detailed-exitcode")
	out, _ = mustRun(t, dir, 0, "plan", "--json")
	if got := actions(planOf(t, events(t, out))); got["greeting"] != "update" || got["copy"] != "update" || got["group.inner"] != "update" || got["other"] != "no-op" {
		t.Errorf("plan after edit = %v, want greeting, copy, group.inner updated and other no-op", got)
	}
	before = snapshot(t, dir, "out")
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs = events(t, out)
	if got := membersWith(evs, "started"); !sameStrings(got, []string{"copy", "greeting", "group.inner"}) {
		t.Errorf("apply after edit started %v, want greeting, copy, group.inner", got)
	}
	requireOrder(t, evs, "done", "greeting", "started", "copy")
	requireOrder(t, evs, "done", "copy", "started", "group.inner")
	greetingSHA = sha256Hex("hello, world\n")
	copyContents = "sha: " + greetingSHA + "\n"
	wantFile(t, dir, "out/greeting.txt", "hello, world\n")
	wantFile(t, dir, "out/copy.txt", copyContents)
	wantFile(t, dir, "out/group/inner.txt", "inner: "+sha256Hex(copyContents))
	if !untouched(t, dir, before["out/other.txt"], "out/other.txt") {
		t.Errorf("out/other.txt was rewritten although other did not change")
	}
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")

	// 4. Renaming other's file replaces it: the old file goes.
	writeFile(t, dir, "landscaper.nix", quickstart("hello, world\n", "out/renamed.txt"))
	out, _ = mustRun(t, dir, 0, "plan", "--json")
	if got := actions(planOf(t, events(t, out))); got["other"] != "replace" || got["greeting"] != "no-op" {
		t.Errorf("plan after renaming other's file = %v, want other replaced, the rest no-op", got)
	}
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	if got := membersWith(events(t, out), "started"); !sameStrings(got, []string{"other"}) {
		t.Errorf("apply after renaming started %v, want only other", got)
	}
	wantNoFile(t, dir, "out/other.txt")
	wantFile(t, dir, "out/renamed.txt", "other\n")
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")

	// 5. Removing a member from the deployment deletes its file.
	writeFile(t, dir, "landscaper.nix", quickstart("hello, world\n", ""))
	out, _ = mustRun(t, dir, 0, "plan", "--json")
	if got := actions(planOf(t, events(t, out))); got["other"] != "delete" || got["greeting"] != "no-op" {
		t.Errorf("plan after removing other = %v, want other deleted, the rest no-op", got)
	}
	before = snapshot(t, dir, "out")
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs = events(t, out)
	if got := membersWith(evs, "started"); !sameStrings(got, []string{"other"}) {
		t.Errorf("apply after removing other started %v, want only other", got)
	}
	wantNoFile(t, dir, "out/renamed.txt")
	for _, name := range []string{"out/greeting.txt", "out/copy.txt", "out/group/inner.txt"} {
		if !untouched(t, dir, before[name], name) {
			t.Errorf("removing other rewrote %s", name)
		}
	}
	if got := stateMembers(t, dir); !sameStrings(got, []string{"copy", "greeting", "group.inner"}) {
		t.Errorf("state list after removing other = %v", got)
	}
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")

	// 6. destroy removes everything, dependents first.
	out, _ = mustRun(t, dir, 0, "destroy", "--auto-approve", "--json")
	evs = events(t, out)
	if got := membersWith(evs, "done"); !sameStrings(got, []string{"copy", "greeting", "group.inner"}) {
		t.Errorf("destroy finished %v", got)
	}
	requireOrder(t, evs, "done", "group.inner", "started", "copy")
	requireOrder(t, evs, "done", "copy", "started", "greeting")
	for _, name := range []string{"out/greeting.txt", "out/copy.txt", "out/group/inner.txt"} {
		wantNoFile(t, dir, name)
	}
	if got := stateMembers(t, dir); len(got) != 0 {
		t.Errorf("state list after destroy = %v, want empty", got)
	}
	if out, _ := mustRun(t, dir, 0, "state", "list"); strings.TrimSpace(out) != "" {
		t.Errorf("state list after destroy printed %q", out)
	}
	checkStatePerms(t, dir)
	// Destroying again has nothing to do.
	out, _ = mustRun(t, dir, 0, "destroy", "--auto-approve", "--json")
	if p := planOf(t, events(t, out)); len(p.Changes) != 0 {
		t.Errorf("second destroy planned %+v", p.Changes)
	}
}

// checkStatePerms checks the state file is 0600 and its directory 0700.
func checkStatePerms(t *testing.T, dir string) {
	t.Helper()
	info, err := os.Stat(statePath(dir))
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", info.Mode().Perm())
	}
	info, err = os.Stat(filepath.Dir(statePath(dir)))
	if err != nil {
		t.Fatalf("state directory: %v", err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", info.Mode().Perm())
	}
}
