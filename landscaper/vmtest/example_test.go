package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// applyTimeout bounds one landscaper command of the example: an
// installation under TCG waits about a minute for the installer and takes
// about another for the installation and the reboot.
const applyTimeout = 20 * time.Minute

// TestInstallExampleOnAVM runs examples/install with `landscaper apply`
// against a real VM: powered on with an empty disk and network boot
// first, it boots the installer from `landscaper serve`, and one apply
// makes the keys, writes the boot entry, waits for the installer and
// rotates its host key, installs the system onto the disk (nixos.install)
// and reboots it into that system, whose nixos.system member then has
// nothing to do. Then: the second plan is empty; an update activates with
// a health check and no reboot; an update whose health check fails is
// rolled back; an update to another kernel with reboot = "ifNeeded"
// reboots into it; --replace server.installerHostKey installs the machine again
// through a new installer session. No private key text appears in any
// output, log or serial console.
func TestInstallExampleOnAVM(t *testing.T) {
	requireTools(t)
	p := newPhases(t)

	p.begin("assets (scripts/vm-assets.sh)")
	a := vmAssets(t)
	p.begin("build landscaper")
	testbin.Dir(t)

	dir := t.TempDir()
	deploy := filepath.Join(dir, "deployment")
	testbin.CopyExample(t, "install", deploy)
	p.begin("build the stand-ins (nix-build)")
	// Root's key on the installed system comes from the installation's
	// extraFiles, not from the system: none is built in.
	st := buildStandins(t, a, "")
	versionB := a.kernels[len(a.kernels)-1]

	p.begin("boot server; VM powered on with an empty disk")
	bootDir := filepath.Join(dir, "boot")
	s := startServer(t, bootDir)
	const mac = "52:54:00:4c:53:03"
	disk := filepath.Join(dir, "disk.qcow2")
	run(t, nil, nil, "qemu-img", "create", "-q", "-f", "qcow2", disk, diskSize)
	sshPort := freePort(t, "tcp")
	v := startVM(t, vmConfig{
		name: "example", mac: mac, disk: disk, sshPort: sshPort,
		bootfile: fmt.Sprintf("tftp://10.0.2.2:%d/boot.ipxe", s.tftpPort),
	})
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	params := func(system, healthChecks, reboot string) {
		t.Helper()
		local := fmt.Sprintf(`let standins = import %s { parts = %q; }; in {
  address = "127.0.0.1";
  port = %d;
  mac = %q;
  bootDir = %q;
  kernel = %q;
  initrd = [ %q ];
  cmdline = "console=ttyS0,115200 panic=10";
  diskoScript = standins.disko;
  toplevel = standins.%s;
  healthChecks = %s;
  reboot = %q;
}
`, testdata, a.parts, sshPort, mac, bootDir, a.kernel, a.initrd, system, healthChecks, reboot)
		if err := os.WriteFile(filepath.Join(deploy, "params.local.nix"), []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var outputs []string
	landscaper := func(want int, args ...string) string {
		t.Helper()
		out, code, err := runLandscaper(t, deploy, args...)
		outputs = append(outputs, out)
		if err != nil || code != want {
			t.Fatalf("landscaper %s: exit %d (%v), want %d\n%s\nserial console (last 60 lines):\n%s", strings.Join(args, " "), code, err, want, out, lastLines(v.serial(), 60))
		}
		return out
	}

	p.begin("apply: power-on to the installed system")
	params("systemA", "[ ]", "never")
	applyAt := time.Now()
	out := landscaper(0, "apply", "--auto-approve")
	t.Logf("the first apply took %s:\n%s", time.Since(applyAt).Round(time.Second), out)
	for _, want := range []string{"Resources: 6 added", "runs an installer", "from its disk and presents host key", "already runs " + st.systemA} {
		if !strings.Contains(out, want) {
			t.Errorf("the first apply's output lacks %q", want)
		}
	}
	serial := v.serial()
	if !strings.Contains(serial, "landscaper-installer: ready") || !strings.Contains(serial, "booting from its disk") {
		t.Errorf("the serial console does not show the installer, then the boot server sending the machine to its disk")
	}
	outs := testbin.StateOutputs(t, deploy)
	rotated := testbin.OutputString(t, outs, "server.hostKey", "hostPublicKey")
	temporary := testbin.OutputString(t, outs, "server.installerHostKey", "publicKey")
	deployPrivate := testbin.OutputString(t, outs, "server.deployKey", "privateKey")
	if got := testbin.OutputString(t, outs, "server.install", "hostPublicKey"); got != rotated {
		t.Errorf("install's hostPublicKey is %s, want the rotated key %s", got, rotated)
	}
	if fields(rotated) == fields(temporary) {
		t.Fatalf("the host key was not rotated: %s", rotated)
	}
	if got := v.presentedKey(); got != fields(rotated) {
		t.Errorf("the installed machine presents %q, want the rotated key recorded in the state, %s", got, rotated)
	}
	if _, err := bootentry.ReadInstalled(testbin.OutputString(t, outs, "server.netboot", "installedRecord")); err != nil {
		t.Errorf("no installation record for the boot server: %v", err)
	}
	login := key{private: filepath.Join(dir, "deploy-key")}
	if err := os.WriteFile(login.private, []byte(deployPrivate), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := newTarget(t, dir, sshPort, login, fields(rotated))
	checkBooted(t, sys, st.systemA, a.kernels[0], "")

	p.begin("plan: nothing to do")
	landscaper(0, "plan", "--detailed-exitcode")

	p.begin("update without a reboot, with a health check")
	params("systemA2", `[ { command = "test -e /run/current-system/landscaper-standin"; } ]`, "ifNeeded")
	out = landscaper(0, "apply", "--auto-approve")
	for _, want := range []string{"switch-to-configuration test succeeded", "confirmed " + st.systemA2, "Resources: 0 added, 1 changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the update's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "rebooted into") {
		t.Errorf("an update with the same kernel rebooted:\n%s", out)
	}
	checkSystems(t, sys, st.systemA, st.systemA2, st.systemA2)

	p.begin("update with a failing health check: rolled back")
	params("systemB", `[ { command = "false"; retries = 0; } ]`, "never")
	out = landscaper(1, "apply", "--auto-approve")
	if !strings.Contains(out, "rolled back") {
		t.Errorf("the failed update does not say it rolled back:\n%s", out)
	}
	checkSystems(t, sys, st.systemA, st.systemA2, st.systemA2)

	p.begin("update to another kernel, reboot = ifNeeded")
	params("systemB", "[ ]", "ifNeeded")
	out = landscaper(0, "apply", "--auto-approve")
	if !strings.Contains(out, "rebooted into "+st.systemB) {
		t.Errorf("the update to another kernel did not reboot:\n%s", out)
	}
	checkBooted(t, sys, st.systemB, versionB, "landscaper.variant=b")

	p.begin("apply --replace server.installerHostKey: install again")
	from := v.offset()
	out = landscaper(0, "apply", "--auto-approve", "--replace", "server.installerHostKey")
	t.Logf("the re-installation:\n%s", out)
	for _, want := range []string{"rebooting", "runs an installer"} {
		if !strings.Contains(out, want) {
			t.Errorf("the re-installation's output lacks %q", want)
		}
	}
	again := v.serial()[min(from, len(v.serial())):]
	if !strings.Contains(again, "landscaper-installer: ready") || !strings.Contains(again, "booting from its disk") {
		t.Errorf("the serial console does not show the installer booted again and then the disk")
	}
	outs = testbin.StateOutputs(t, deploy)
	reinstalled := testbin.OutputString(t, outs, "server.hostKey", "hostPublicKey")
	if fields(reinstalled) == fields(rotated) || fields(testbin.OutputString(t, outs, "server.installerHostKey", "publicKey")) == fields(temporary) {
		t.Errorf("the new installer session kept an old key")
	}
	if got := v.presentedKey(); got != fields(reinstalled) {
		t.Errorf("the re-installed machine presents %q, want %s", got, reinstalled)
	}
	if err := os.WriteFile(login.private, []byte(testbin.OutputString(t, outs, "server.deployKey", "privateKey")), 0o600); err != nil {
		t.Fatal(err)
	}
	sys = newTarget(t, dir, sshPort, login, fields(reinstalled))
	checkBooted(t, sys, st.systemB, versionB, "landscaper.variant=b")
	landscaper(0, "plan", "--detailed-exitcode")

	p.begin("secrets")
	secrets := []string{deployPrivate, testbin.OutputString(t, outs, "server.installerHostKey", "privateKey"), testbin.OutputString(t, outs, "server.deployKey", "privateKey")}
	texts := append(outputs, s.log.String(), v.serial())
	for _, secret := range secrets {
		for _, line := range testbin.SecretLines(secret) {
			for i, text := range texts {
				if strings.Contains(text, line) {
					t.Errorf("private key text in output %d", i)
				}
			}
		}
	}
}

// checkSystems checks the booted and current systems and the boot default.
func checkSystems(t *testing.T, sys sshTarget, booted, current, profile string) {
	t.Helper()
	out := sys.run(t, "echo $(readlink /run/booted-system) $(readlink /run/current-system) $(readlink -f /nix/var/nix/profiles/system)")
	if got, want := strings.Fields(out), []string{booted, current, profile}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("booted, current and boot default are %q, want %q", got, want)
	}
}

// runLandscaper runs landscaper ARGS in dir with a deadline and returns
// its stdout and stderr together and its exit code.
func runLandscaper(t *testing.T, dir string, args ...string) (string, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testbin.Dir(t), "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = testbin.Env()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1, fmt.Errorf("timed out after %s", applyTimeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), nil
	}
	return string(out), 0, err
}

// fields is a public key without its comment: "ssh-ed25519 AAAA...".
func fields(key string) string {
	f := strings.Fields(key)
	if len(f) < 2 {
		return key
	}
	return f[0] + " " + f[1]
}
