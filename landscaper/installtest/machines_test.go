package installtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// machineMembers are the members landscaper.modules.machines declares for
// a machine without a disk script, by their name within its group.
var machineMembers = []string{"deployKey", "hostKey", "installerHostKey", "netboot", "system"}

// standinMachine is one stand-in server of a machines deployment: its name
// in `machines`, its MAC and SSH port (on 127.0.0.1), and the host once it
// has booted.
type standinMachine struct {
	name string
	mac  string
	port int
	host *testhost.Host
}

func newStandinMachine(t *testing.T, name string, n int) *standinMachine {
	t.Helper()
	return &standinMachine{name: name, mac: fmt.Sprintf("52:54:00:6d:61:%02x", n), port: testhost.FreePort(t)}
}

// members are the machine's member paths.
func (m *standinMachine) members() []string {
	var out []string
	for _, n := range machineMembers {
		out = append(out, m.name+"."+n)
	}
	return out
}

// writeMachinesDeployment writes dir/landscaper.nix: a deployment written
// only with the machines module, one attribute of `machines` per machine,
// the installer and the system being the stand-ins of examples/install's
// params.nix (copied into dir). It imports ./more.nix when there is one.
func writeMachinesDeployment(t *testing.T, dir, bootDir string, ms []*standinMachine) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{ landscaper, ... }:
let standins = import ./params.nix; in
{
  imports = [ landscaper.modules.machines ] ++ (if builtins.pathExists ./more.nix then [ ./more.nix ] else [ ]);
  bootServer.bootDir = %q;
`, bootDir)
	for _, m := range ms {
		fmt.Fprintf(&b, `  machines.%s = {
    mac = %q;
    address = "127.0.0.1";
    port = %d;
    installer = { inherit (standins) kernel initrd; };
    system = standins.toplevel;
  };
`, m.name, m.mac, m.port)
	}
	b.WriteString("}\n")
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bootMachines boots, while apply runs, each machine that has no host
// yet: it fetches its entry from the boot server (all at once, as
// servers powered on together do) and then starts its sshd.
func bootMachines(t *testing.T, srv *server, apply *run, ms []*standinMachine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	go func() {
		select {
		case <-apply.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	type booted struct {
		m    *standinMachine
		boot *testhost.Boot
		err  error
	}
	results := make(chan booted)
	waiting := 0
	for _, m := range ms {
		if m.host != nil {
			continue
		}
		waiting++
		dir := t.TempDir()
		go func() {
			b, err := testhost.NetBoot(ctx, testhost.BootOptions{URL: "tftp://" + srv.tftpAddr + "/", MAC: m.mac, Dir: dir, Logf: t.Logf})
			results <- booted{m, b, err}
		}()
	}
	var failed []string
	for ; waiting > 0; waiting-- {
		r := <-results
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.m.name, r.err))
			continue
		}
		r.m.host = testhost.Start(t, testhost.Options{HostKey: r.boot.HostKey, AuthorizedKeys: r.boot.AuthorizedKeys, Port: r.m.port})
	}
	if len(failed) > 0 {
		t.Fatalf("machines did not boot: %s\napply:\n%s\nlandscaper serve:\n%s", strings.Join(failed, "; "), apply.output(), srv.log.String())
	}
}

// servesEntry says whether the boot server answers the machine with MAC
// mac with a boot entry (a script that loads a kernel), over TFTP.
func servesEntry(t *testing.T, srv *server, mac string) bool {
	t.Helper()
	u := "tftp://" + srv.tftpAddr + "/" + bootentry.ScriptPath(mac)
	out, err := exec.Command("curl", "--silent", "--show-error", "--fail", u).Output()
	if err != nil {
		t.Fatalf("fetch %s: %v", u, err)
	}
	return strings.Contains(string(out), "\nkernel ")
}

// plannedActions runs `landscaper plan --json` in dir and returns each
// member's planned action, leaving out no-ops.
func plannedActions(t *testing.T, dir string) map[string]string {
	t.Helper()
	r := landscaper(t, dir, 0, "plan", "--json")
	for _, l := range strings.Split(strings.TrimSpace(r.stdout.String()), "\n") {
		var p struct {
			Kind    string
			Changes []struct{ Member, Action string }
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("plan --json printed a line that is not JSON: %q: %v", l, err)
		}
		if p.Kind != "plan" {
			continue
		}
		actions := map[string]string{}
		for _, c := range p.Changes {
			if c.Action != "no-op" {
				actions[c.Member] = c.Action
			}
		}
		return actions
	}
	t.Fatalf("plan --json printed no plan:\n%s", r.output())
	return nil
}

// expectActions fails the test unless actions is exactly action for each
// of members.
func expectActions(t *testing.T, what string, actions map[string]string, action string, members []string) {
	t.Helper()
	want := map[string]string{}
	for _, m := range members {
		want[m] = action
	}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("%s: the plan's changes are %v, want %v", what, actions, want)
	}
}

// checkInstalled checks that each machine runs and boots the stand-in
// system and presents the host key its hostKey member recorded, not the
// temporary one.
func checkInstalled(t *testing.T, dir string, ms []*standinMachine) {
	t.Helper()
	outputs := testbin.StateOutputs(t, dir)
	want := toplevel(t, dir)
	for _, m := range ms {
		recorded := keyOnly(t, testbin.OutputString(t, outputs, m.name+".hostKey", "hostPublicKey"))
		temporary := keyOnly(t, testbin.OutputString(t, outputs, m.name+".installerHostKey", "publicKey"))
		if got := presentedKey(t, m.port); got != recorded || got == temporary {
			t.Errorf("%s presents %s; its hostKey recorded %s, its temporary key is %s", m.name, got, recorded, temporary)
		}
		if got := m.host.CurrentSystem(); got != want {
			t.Errorf("%s runs %q, want %s", m.name, got, want)
		}
		if got := m.host.BootDefault(); got != want {
			t.Errorf("%s boots %q, want %s", m.name, got, want)
		}
	}
}

// stateMembers are the member paths the state records, sorted.
func stateMembers(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for n := range testbin.StateOutputs(t, dir) {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// allMembers are the member paths of machines ms, sorted.
func allMembers(ms []*standinMachine) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.members()...)
	}
	sort.Strings(out)
	return out
}

// TestMachinesModule: a deployment of three machines written only with
// landscaper.modules.machines installs them, booting from `landscaper
// serve` at once, with their systems updated by the module's rollout;
// adding a fourth machine creates only its members, removing one deletes
// only its members (and its boot entry); mistakes in a machine's
// definition are refused with the option and the file, and change nothing.
func TestMachinesModule(t *testing.T) {
	requireTools(t)
	work := t.TempDir()
	dir := filepath.Join(work, "deployment")
	testbin.CopyExample(t, "install", dir) // for params.nix's stand-ins
	bootDir := filepath.Join(work, "boot")
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bootDir)
	ms := []*standinMachine{newStandinMachine(t, "alpha", 1), newStandinMachine(t, "beta", 2), newStandinMachine(t, "gamma", 3)}

	// Three machines: one apply installs them all.
	writeMachinesDeployment(t, dir, bootDir, ms)
	expectActions(t, "three machines", plannedActions(t, dir), "create", allMembers(ms))
	apply := start(t, dir, "apply", "--auto-approve")
	bootMachines(t, srv, apply, ms)
	apply.wait(t, 0)
	out := apply.stdout.String()
	for _, want := range []string{"Resources: 15 added, 0 changed, 0 replaced, 0 destroyed", "rollout machines: updated: alpha.system, beta.system, gamma.system"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first apply does not say %q:\n%s", want, apply.output())
		}
	}
	checkInstalled(t, dir, ms)
	if got, want := stateMembers(t, dir), allMembers(ms); !slices.Equal(got, want) {
		t.Errorf("the state records %v, want %v", got, want)
	}
	landscaper(t, dir, 0, "plan", "--detailed-exitcode")
	activations := map[string]int{}
	for _, m := range ms {
		activations[m.name] = len(m.host.Activations())
	}
	before := testbin.StateOutputs(t, dir)

	// A fourth machine: only its members are created, and the others'
	// systems are not activated again.
	delta := newStandinMachine(t, "delta", 4)
	ms = append(ms, delta)
	writeMachinesDeployment(t, dir, bootDir, ms)
	expectActions(t, "a fourth machine", plannedActions(t, dir), "create", delta.members())
	apply = start(t, dir, "apply", "--auto-approve")
	bootMachines(t, srv, apply, ms)
	apply.wait(t, 0)
	if !strings.Contains(apply.stdout.String(), "Resources: 5 added, 0 changed, 0 replaced, 0 destroyed") {
		t.Errorf("adding a machine did not add exactly its 5 members:\n%s", apply.output())
	}
	checkInstalled(t, dir, ms)
	for _, m := range ms[:3] {
		if got := len(m.host.Activations()); got != activations[m.name] {
			t.Errorf("adding delta activated %s again (%d activations, before %d)", m.name, got, activations[m.name])
		}
	}

	// Removing beta deletes only its members: its boot entry is gone, the
	// others' members are as they were.
	beta := ms[1]
	ms = slices.Delete(slices.Clone(ms), 1, 2)
	writeMachinesDeployment(t, dir, bootDir, ms)
	expectActions(t, "beta removed", plannedActions(t, dir), "delete", beta.members())
	apply = landscaper(t, dir, 0, "apply", "--auto-approve")
	if !strings.Contains(apply.stdout.String(), "Resources: 0 added, 0 changed, 0 replaced, 5 destroyed") {
		t.Errorf("removing a machine did not delete exactly its 5 members:\n%s", apply.output())
	}
	if got, want := stateMembers(t, dir), allMembers(ms); !slices.Equal(got, want) {
		t.Errorf("after removing beta the state records %v, want %v", got, want)
	}
	after := testbin.StateOutputs(t, dir)
	for _, m := range []*standinMachine{ms[0], ms[1]} { // alpha and gamma, there from the start
		for _, member := range m.members() {
			if fmt.Sprint(after[member]) != fmt.Sprint(before[member]) {
				t.Errorf("removing beta changed %s's outputs", member)
			}
		}
	}
	if servesEntry(t, srv, beta.mac) {
		t.Errorf("the boot server still serves beta's entry")
	}
	for _, m := range ms {
		if !servesEntry(t, srv, m.mac) {
			t.Errorf("the boot server no longer serves %s's entry", m.name)
		}
	}
	landscaper(t, dir, 0, "plan", "--detailed-exitcode")

	// Mistakes in a fifth machine, defined in another file: each is
	// refused before anything changes, naming the option and that file.
	statePath := filepath.Join(dir, ".landscaper", "state.json")
	state, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	more := filepath.Join(dir, "more.nix")
	machine := func(attrs string) string {
		return "{ machines.epsilon = { " + attrs + " installer.kernel = \"/boot/bzImage\"; system = \"/nix/store/00000000000000000000000000000000-system\"; }; }\n"
	}
	for _, c := range []struct {
		name, module string
		want         []string
	}{
		{"a missing mac", machine(`address = "127.0.0.9";`),
			[]string{"option `machines.epsilon.mac` has no value", "declared in landscaper.modules.machines", "the definition of `machines.epsilon` in " + more}},
		{"a malformed mac", machine(`mac = "52:54:00:6d:61"; address = "127.0.0.9";`),
			[]string{"option `machines.epsilon.mac`: the definition in " + more + " is not of type `MAC address", `"52:54:00:6d:61"`}},
		{"the mac of another machine", machine(fmt.Sprintf(`mac = %q; address = "127.0.0.9";`, strings.ToUpper(ms[0].mac))),
			[]string{"option `machines.alpha.mac` (in " + filepath.Join(dir, "landscaper.nix") + ") and option `machines.epsilon.mac` (in " + more + ") give two machines the same MAC, " + ms[0].mac}},
		{"the address of another machine", machine(fmt.Sprintf(`mac = "52:54:00:6d:61:05"; address = "127.0.0.1"; port = %d;`, ms[1].port)),
			[]string{"option `machines.epsilon.address` (in " + more + ") and option `machines.gamma.address` (in " + filepath.Join(dir, "landscaper.nix") + fmt.Sprintf(") give two machines the same address and port, 127.0.0.1 port %d", ms[1].port)}},
	} {
		if err := os.WriteFile(more, []byte(c.module), 0o644); err != nil {
			t.Fatal(err)
		}
		r := landscaper(t, dir, 1, "apply", "--auto-approve")
		for _, want := range c.want {
			if !strings.Contains(r.stderr.String(), want) {
				t.Errorf("%s: the error does not say %q:\n%s", c.name, want, r.output())
			}
		}
		if now, err := os.ReadFile(statePath); err != nil || string(now) != string(state) {
			t.Errorf("%s: the refused apply changed the state (%v)", c.name, err)
		}
	}
	if err := os.Remove(more); err != nil {
		t.Fatal(err)
	}
	landscaper(t, dir, 0, "plan", "--detailed-exitcode")
}
