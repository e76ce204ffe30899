package crashtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
	"github.com/landscaper-nix/landscaper/proto/plugin"
)

// exitWithin bounds how long landscaper may take to exit after an
// interrupt.
const exitWithin = 15 * time.Second

// hangDeployment has three members that hang, four that are made at once
// and one that waits for a hanging one.
func hangDeployment(behaviour string) []member {
	return []member{
		item("hang1", "out/hang1", behaviour),
		item("hang2", "out/hang2", behaviour),
		item("hang3", "out/hang3", behaviour),
		item("okA", "out/okA", testprovider.BehaviourOK),
		item("okB", "out/okB", testprovider.BehaviourOK),
		file("fileA", "out/fileA", "a\n"),
		file("fileB", "out/fileB", "b\n"),
		{"afterHang", `{ type = providers.local.file; inputs = { name = "out/afterHang"; contents = "after ${members.hang1.outputs.id}\n"; }; }`},
	}
}

var (
	hangMembers  = []string{"hang1", "hang2", "hang3"}
	quickMembers = []string{"okA", "okB", "fileA", "fileB"}
)

// startHanging starts an apply of hangDeployment and waits until the hang
// members have started and the quick ones are done.
func startHanging(t *testing.T, bin, dir string) *running {
	t.Helper()
	run := start(t, bin, dir, "apply", "--auto-approve", "--json")
	startedHang, doneQuick := map[string]bool{}, map[string]bool{}
	run.waitFor("the hang members to start and the others to finish", 2*time.Minute, func(ev event) bool {
		switch ev.Kind {
		case "started":
			startedHang[ev.Member] = true
		case "done":
			doneQuick[ev.Member] = true
		}
		for _, m := range hangMembers {
			if !startedHang[m] {
				return false
			}
		}
		for _, m := range quickMembers {
			if !doneQuick[m] {
				return false
			}
		}
		return true
	})
	if len(pluginsOf(bin, run.pid())) == 0 {
		t.Errorf("no plugin process of landscaper (pid %d) found while it applies; the check for left-over plugins would prove nothing", run.pid())
	}
	return run
}

// checkInterrupted checks the state an interrupted hangDeployment apply
// left: the quick members recorded, the hang members pending or absent.
// If saved is false, the engine had no chance to save its last results
// (it was killed): the quick members may then be pending instead.
func checkInterrupted(t *testing.T, bin, dir string, saved bool) {
	t.Helper()
	st := mustReadState(t, dir)
	for _, m := range quickMembers {
		_, recorded := st.Resources[m]
		_, pending := st.Pending[m]
		switch {
		case saved && !recorded:
			t.Errorf("state has no record of %s, which was done before the interrupt", m)
		case !recorded && !pending:
			t.Errorf("state has neither a record nor a pending record of %s, which was done before the engine was stopped", m)
		}
	}
	for _, m := range append(hangMembers, "afterHang") {
		if _, ok := st.Resources[m]; ok {
			t.Errorf("state records %s as made, but it never completed", m)
		}
	}
	if saved {
		for m := range st.Pending {
			if !strings.HasPrefix(m, "hang") {
				t.Errorf("state has a pending record for %s, which was not in flight", m)
			}
		}
	}
	listed := stateList(t, bin, dir)
	for _, m := range quickMembers {
		if _, recorded := st.Resources[m]; recorded && listed[m] == "" {
			t.Errorf("state list does not show %s: %v", m, listed)
		}
	}
	mustNotExist(t, dir, "out/hang1", "out/hang2", "out/hang3", "out/afterHang")
}

// converge applies hangDeployment with every member behaving and checks
// the result.
func converge(t *testing.T, bin, dir, testkit string) {
	t.Helper()
	ms := hangDeployment(testprovider.BehaviourOK)
	deployment(t, dir, testkit, ms...)
	mustSucceed(t, bin, dir, "apply", "--auto-approve")
	mustExist(t, dir, "out/hang1", "out/hang2", "out/hang3", "out/okA", "out/okB", "out/fileA", "out/fileB", "out/afterHang")
	planClean(t, bin, dir)
	st := mustReadState(t, dir)
	if len(st.Resources) != len(ms) || len(st.Pending) != 0 {
		t.Errorf("state records %v with %v pending; want the %d members and nothing pending", keys(st.Resources), keys(st.Pending), len(ms))
	}
	noStrayPlugins(t, bin, "after converging")
}

// TestInterrupt: Ctrl-C while operations hang stops them, saves the state
// (completed members recorded, the hanging ones pending or absent), exits
// non-zero within seconds and leaves no plugin behind; the next apply
// converges.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	deployment(t, dir, "", hangDeployment(testprovider.BehaviourHang)...)

	run := startHanging(t, bin, dir)
	run.signal(syscall.SIGINT)
	res := run.wait(exitWithin)
	if res.code == 0 {
		t.Errorf("interrupted apply: want a non-zero exit, got %s", res)
	}
	t.Logf("interrupted apply exited %d", res.code)
	noStrayPlugins(t, bin, "after the interrupt")
	checkInterrupted(t, bin, dir, true)
	converge(t, bin, dir, "")
}

// TestInterruptTwice: a second Ctrl-C quits at once; no plugin is left
// and the next apply settles what was in flight.
func TestInterruptTwice(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	deployment(t, dir, "", hangDeployment(testprovider.BehaviourHang)...)

	run := startHanging(t, bin, dir)
	run.signal(syscall.SIGINT)
	time.Sleep(time.Millisecond)
	run.signal(syscall.SIGINT)
	res := run.wait(exitWithin)
	if res.code == 0 {
		t.Errorf("interrupted apply: want a non-zero exit, got %s", res)
	}
	t.Logf("apply interrupted twice exited %d", res.code)
	noStrayPlugins(t, bin, "after two interrupts")
	checkInterrupted(t, bin, dir, false)
	converge(t, bin, dir, "")
}

// TestEngineKilledWhileProviderBusy: `kill -9` of the engine while a
// provider is in the middle of an operation takes the plugins down with
// it (parent-death signal), and the next apply converges.
func TestEngineKilledWhileProviderBusy(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	testkit := filepath.Join(bin, "landscaper-provider-testkit")
	deployment(t, dir, testkit, hangDeployment(testprovider.BehaviourHang)...)

	run := startHanging(t, bin, dir)
	plugins := pluginsOf(bin, run.pid())
	run.signal(syscall.SIGKILL)
	run.wait(exitWithin)
	took := noStrayPlugins(t, bin, "after kill -9 of the engine")
	t.Logf("the engine's %d plugin processes were gone %s after it was killed", len(plugins), took.Round(time.Millisecond))
	checkInterrupted(t, bin, dir, false)
	converge(t, bin, dir, testkit)
}

// TestPluginNoticesParentDeath: a provider whose parent dies without the
// kernel telling it (no parent-death signal, as when it is started by
// something other than the engine) notices by itself and exits.
func TestPluginNoticesParentDeath(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	// A copy of its own, so other tests' checks for stray plugins do not
	// count it.
	own := filepath.Join(t.TempDir(), "landscaper-provider-testkit")
	data, err := os.ReadFile(filepath.Join(bin, "landscaper-provider-testkit"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", `"$0" >/dev/null 2>&1 & echo $!; wait`, own)
	sh.Env = append(env(), plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue)
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Process.Kill(); _ = sh.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read the provider's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("provider pid %q: %v", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// Wait until it runs the provider and has had time to start serving.
	deadline := time.Now().Add(time.Minute)
	for {
		p, ok := readProc(pid)
		if ok && p.exe == own && alive(p) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider (pid %d) did not start: %+v", pid, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if p, ok := readProc(pid); !ok || !alive(p) {
		t.Fatalf("provider (pid %d) exited before its parent died", pid)
	}

	if err := sh.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	begin := time.Now()
	for {
		p, ok := readProc(pid)
		if !ok || !alive(p) || p.exe != own {
			t.Logf("provider exited %s after its parent died", time.Since(begin).Round(time.Millisecond))
			return
		}
		if time.Since(begin) > pluginGoneWithin {
			t.Fatalf("provider (pid %d) still runs %s after its parent died: %v", pid, pluginGoneWithin, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
