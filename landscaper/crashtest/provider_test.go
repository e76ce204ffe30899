package crashtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
)

// member is a member of a small hand-made deployment.
type member struct {
	name string
	// nix is the member's attribute set, e.g.
	// `{ type = providers.testkit.item; inputs = { ... }; }`.
	nix string
}

func item(name, path, behaviour string) member {
	return member{name, fmt.Sprintf(`{ type = providers.testkit.item; inputs = { path = %s; behaviour = %s; }; }`, nixString(path), nixString(behaviour))}
}

func file(name, path, contents string) member {
	return member{name, fmt.Sprintf(`{ type = providers.local.file; inputs = { name = %s; contents = %s; }; }`, nixString(path), nixString(contents))}
}

// deployment writes landscaper.nix in dir. If testkit is not empty, the
// deployment declares the testkit provider with that executable; otherwise
// landscaper finds it next to itself.
func deployment(t *testing.T, dir, testkit string, ms ...member) {
	t.Helper()
	var b strings.Builder
	b.WriteString("{ members, providers, ... }:\n{\n")
	if testkit != "" {
		fmt.Fprintf(&b, "  providers.testkit.executable = %s;\n", nixString(testkit))
	}
	for _, m := range ms {
		fmt.Fprintf(&b, "  members.%s = %s;\n", m.name, m.nix)
	}
	b.WriteString("}\n")
	writeFile(t, filepath.Join(dir, "landscaper.nix"), b.String())
}

func mustExist(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s was not created: %v", f, err)
		}
	}
}

func mustNotExist(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s exists, but it should not", f)
		}
	}
}

// planClean checks that plan --detailed-exitcode finds nothing to do.
func planClean(t *testing.T, bin, dir string) {
	t.Helper()
	if r := landscaper(t, bin, dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan --detailed-exitcode: want exit 0 (no changes), got %s", r)
	}
}

// TestProviderPanics: a provider that panics in Create fails that member
// only. The output names the member and says it panicked, the members
// that do not depend on it are created and recorded, and no plugin process
// is left.
func TestProviderPanics(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	members := []member{
		item("boom", "out/boom", testprovider.BehaviourPanic),
		item("okA", "out/okA", testprovider.BehaviourOK),
		item("okB", "out/okB", testprovider.BehaviourOK),
		member{"slowC", `{ type = providers.testkit.item; inputs = { path = "out/slowC"; behaviour = "slow"; delayMs = 300; }; }`},
		file("fileA", "out/fileA", "a\n"),
		file("fileB", "out/fileB", "b\n"),
		// Depends on boom, so it is skipped.
		member{"afterBoom", `{ type = providers.local.file; inputs = { name = "out/afterBoom"; contents = "boom is ${members.boom.outputs.id}\n"; }; }`},
	}
	deployment(t, dir, "", members...)

	r := landscaper(t, bin, dir, "apply", "--auto-approve")
	if r.code == 0 {
		t.Fatalf("apply with a panicking provider: want a non-zero exit, got %s", r)
	}
	if !strings.Contains(r.output(), "boom") || !strings.Contains(r.output(), "panicked") {
		t.Errorf("apply output should name the member boom and say its provider panicked:\n%s", r)
	}
	noStrayPlugins(t, bin, "after the apply")
	mustExist(t, dir, "out/okA", "out/okB", "out/slowC", "out/fileA", "out/fileB")
	mustNotExist(t, dir, "out/boom", "out/afterBoom")

	st := mustReadState(t, dir)
	for _, m := range []string{"okA", "okB", "slowC", "fileA", "fileB"} {
		if _, ok := st.Resources[m]; !ok {
			t.Errorf("state has no record of %s", m)
		}
	}
	for _, m := range []string{"boom", "afterBoom"} {
		if _, ok := st.Resources[m]; ok {
			t.Errorf("state records %s, which was never made", m)
		}
	}
	listed := stateList(t, bin, dir)
	for _, m := range []string{"okA", "okB", "slowC", "fileA", "fileB"} {
		if listed[m] == "" {
			t.Errorf("state list does not show %s:\n%v", m, listed)
		}
	}
	if listed["boom"] != "" || listed["afterBoom"] != "" {
		t.Errorf("state list shows members that were never made: %v", listed)
	}

	// Once it behaves, the deployment converges.
	members[0] = item("boom", "out/boom", testprovider.BehaviourOK)
	deployment(t, dir, "", members...)
	mustSucceed(t, bin, dir, "apply", "--auto-approve")
	mustExist(t, dir, "out/boom", "out/afterBoom")
	planClean(t, bin, dir)
	noStrayPlugins(t, bin, "after the second apply")
}

// TestProviderExits: a provider process that exits in the middle of a
// create fails that member; the error shows the provider's last stderr
// line, the engine starts the provider again for the members handled
// after the crash, no plugin process is left, and once the member behaves
// the deployment converges.
func TestProviderExits(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	testkit := filepath.Join(bin, "landscaper-provider-testkit")
	// gate finishes only once the test creates the file "go", which it
	// does when the crash has been reported; after1 and after2 use its
	// output, so they are created after the crash.
	gate := member{"gate", `{ type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "i=0; while [ ! -e go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done" ]; timeout = 120; }; }`}
	members := []member{
		item("crash", "out/crash", testprovider.BehaviourExit),
		gate,
		member{"after1", `{ type = providers.testkit.item; inputs = { path = "out/after1${members.gate.outputs.stdout}"; }; }`},
		member{"after2", `{ type = providers.testkit.item; inputs = { path = "out/after2${members.gate.outputs.stdout}"; behaviour = "slow"; delayMs = 100; }; }`},
		file("fileA", "out/fileA", "a\n"),
	}
	deployment(t, dir, testkit, members...)

	run := start(t, bin, dir, "apply", "--auto-approve", "--json")
	failed := run.waitFor("the crash of member crash", 2*time.Minute, func(ev event) bool {
		return ev.Kind == "failed" && ev.Member == "crash"
	})
	t.Logf("crash reported: %s", failed.Message)
	writeFile(t, filepath.Join(dir, "go"), "")
	res := run.wait(2 * time.Minute)
	if res.code == 0 {
		t.Fatalf("apply with a provider that exits: want a non-zero exit, got %s", res)
	}
	noStrayPlugins(t, bin, "after the apply")

	if !strings.Contains(failed.Message, "exited") {
		t.Errorf("the failure of crash should say its provider exited: %q", failed.Message)
	}
	// The engine's final error names the member.
	if !strings.Contains(res.stderr, "member crash") {
		t.Errorf("apply's error should name the member crash:\n%s", res)
	}
	if !strings.Contains(failed.Message, testprovider.DyingMessage) || !strings.Contains(res.stderr, testprovider.DyingMessage) {
		// go-plugin's Serve points os.Stderr of the provider at a pipe it
		// forwards to the engine's SyncStderr, which plugin.Launch sets to
		// io.Discard; only what reaches file descriptor 2 directly lands in
		// the tail ExplainFailure shows.
		t.Errorf("the failure of crash should show the provider's last stderr line %q, which it wrote with fmt.Fprintln(os.Stderr, ...) before exiting\nevent: %q\n%s", testprovider.DyingMessage, failed.Message, res)
	}

	evs := run.seen()
	done := membersWith(evs, "done")
	for _, m := range []string{"after1", "after2", "gate", "fileA"} {
		if !done[m] {
			t.Errorf("member %s was not applied after the provider crashed:\n%s", m, run.transcript())
		}
	}
	crashed := false
	for _, ev := range evs {
		if ev.Kind == "failed" && ev.Member == "crash" {
			crashed = true
		}
		if ev.Kind == "started" && (ev.Member == "after1" || ev.Member == "after2") && !crashed {
			t.Errorf("%s started before the crash was reported; the test cannot show a restart", ev.Member)
		}
	}
	crashRunPlugins := summaryOf(evs).PluginProcesses
	mustExist(t, dir, "out/after1", "out/after2", "out/fileA")
	mustNotExist(t, dir, "out/crash")
	st := mustReadState(t, dir)
	if _, ok := st.Resources["crash"]; ok {
		t.Errorf("state records crash, which was never made")
	}
	listed := stateList(t, bin, dir)
	for _, m := range []string{"after1", "after2", "gate", "fileA"} {
		if listed[m] == "" {
			t.Errorf("state list does not show %s: %v", m, listed)
		}
	}

	// Once it behaves, the deployment converges.
	members[0] = item("crash", "out/crash", testprovider.BehaviourOK)
	deployment(t, dir, testkit, members...)
	r := mustSucceed(t, bin, dir, "apply", "--auto-approve", "--json")
	mustExist(t, dir, "out/crash")
	// The crashed provider was started again: one process more than a run
	// in which nothing crashes.
	if normal := summaryOf(jsonLines(r.stdout)).PluginProcesses; crashRunPlugins < normal+1 {
		t.Errorf("the run in which testkit crashed started %d plugin processes, a normal run %d; want one more (testkit started again after its crash)", crashRunPlugins, normal)
	}
	planClean(t, bin, dir)
	st = mustReadState(t, dir)
	if len(st.Resources) != len(members) || len(st.Pending) != 0 {
		t.Errorf("state records %v with %v pending; want the %d members and nothing pending", keys(st.Resources), keys(st.Pending), len(members))
	}
	noStrayPlugins(t, bin, "after the second apply")
}
