package vmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/bootentry"
	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/cpio"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestNixosInstallOnAVM runs the nixos provider's nixos.install against a
// real VM: the installer PXE-booted from `landscaper serve`, the disk
// script, the copy into /mnt, the boot loader, the carried host key, the
// installation record that makes the boot server send the machine to its
// disk (its entry stays, network boot stays first), the reboot and the
// check of /run/booted-system. Then nixos.system with reboot = "ifNeeded"
// moves it to a system with another kernel: it reboots and comes back on
// the new kernel, with the same pinned key throughout.
func TestNixosInstallOnAVM(t *testing.T) {
	requireTools(t)
	p := newPhases(t)

	p.begin("assets (scripts/vm-assets.sh)")
	a := vmAssets(t)
	p.begin("build landscaper")
	testbin.Dir(t)

	dir := t.TempDir()
	installerKey := newKey(t, dir, "installer-host-key")
	deployKey := newKey(t, dir, "deploy-key")

	p.begin("build the stand-ins (nix-build)")
	st := buildStandins(t, a, deployKey.public)
	versionB := a.kernels[len(a.kernels)-1]

	p.begin("boot server and entry")
	bootDir := filepath.Join(dir, "boot")
	s := startServer(t, bootDir)
	const mac = "52:54:00:4c:53:02"
	putEntry(t, bootDir, mac, a.kernel, []string{a.initrd}, "console=ttyS0,115200 panic=10", []cpio.File{
		{Path: hostKeyPath, Perm: 0o600, Data: installerKey.privateBytes(t)},
		{Path: authorizedKeysPath, Perm: 0o444, Data: []byte(deployKey.public + " deploy\n")},
	})
	disk := filepath.Join(dir, "disk.qcow2")
	run(t, nil, nil, "qemu-img", "create", "-q", "-f", "qcow2", disk, diskSize)
	sshPort := freePort(t, "tcp")

	p.begin("power-on to installer sshd")
	v := startVM(t, vmConfig{
		name: "nixos-install", mac: mac, disk: disk, sshPort: sshPort,
		bootfile: fmt.Sprintf("tftp://10.0.2.2:%d/boot.ipxe", s.tftpPort),
	})
	v.waitForHostKey(t, installerKey.public, v.started)

	h := sdktest.New(t, nixos.Provider())
	conn := map[string]any{"address": "127.0.0.1", "port": sshPort, "privateKey": string(deployKey.privateBytes(t))}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range conn {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	create := func(typ string, in map[string]any) (*resource.Result, *sdktest.Events) {
		t.Helper()
		ev := &sdktest.Events{}
		res, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: typ, Name: "vm", Inputs: resource.Values{JSON: h.JSON(in)}}, ev)
		if err != nil {
			t.Fatalf("%s create: %v", typ, err)
		}
		return res, ev
	}

	p.begin("nixos.install")
	record := bootentry.InstalledPath(bootDir, mac)
	res, ev := create("nixos.install", with(map[string]any{
		"hostPublicKey": installerKey.public, "toplevel": st.systemA, "diskoScript": st.disko,
		"bootInstalledRecord": record,
		"extraFiles":          map[string]any{"/etc/landscaper-vmtest": map[string]any{"contents": "written by nixos.install\n", "mode": "0640"}},
	}))
	if res.Diagnostics.HasError() {
		t.Fatalf("nixos.install failed: %v\nlog:\n%s\nserial:\n%s", res.Diagnostics.Err(), logText(ev), lastLines(v.serial(), 60))
	}
	t.Logf("nixos.install:\n%s", logText(ev))
	if _, err := bootentry.ReadInstalled(record); err != nil {
		t.Errorf("no installation record for the boot server: %v", err)
	}
	sys := newTarget(t, dir, sshPort, deployKey, installerKey.public)
	checkBooted(t, sys, st.systemA, a.kernels[0], "")
	if out := sys.run(t, "stat -c %a /etc/landscaper-vmtest; cat /etc/landscaper-vmtest"); !strings.Contains(out, "640") || !strings.Contains(out, "written by nixos.install") {
		t.Errorf("extraFiles on the installed system: %q", out)
	}
	serial := v.serial()
	if !strings.Contains(serial, "is installed") || !strings.Contains(serial, "booting from its disk") {
		t.Errorf("the boot server did not send the installed machine to its disk (serial has no \"booting from its disk\")")
	}
	if _, err := os.Stat(filepath.Join(bootDir, "entries", strings.ReplaceAll(mac, ":", "-"))); err != nil {
		t.Errorf("the entry is gone: %v (it should stay; the record sends the machine to its disk)", err)
	}

	p.begin("nixos.system, same system: nothing to do")
	res, ev = create("nixos.system", with(map[string]any{"hostPublicKey": installerKey.public, "toplevel": st.systemA}))
	if res.Diagnostics.HasError() || !strings.Contains(logText(ev), "already runs") {
		t.Errorf("nixos.system of the installed system: %v\n%s", res.Diagnostics.Err(), logText(ev))
	}

	p.begin("nixos.system to B (another kernel) with reboot = ifNeeded")
	rebootAt := time.Now()
	res, ev = create("nixos.system", with(map[string]any{"hostPublicKey": installerKey.public, "toplevel": st.systemB, "reboot": "ifNeeded"}))
	if res.Diagnostics.HasError() {
		t.Fatalf("nixos.system to B: %v\n%s\nserial:\n%s", res.Diagnostics.Err(), logText(ev), lastLines(v.serial(), 60))
	}
	t.Logf("nixos.system to B with a reboot took %s:\n%s", time.Since(rebootAt).Round(time.Second), logText(ev))
	if !strings.Contains(logText(ev), "rebooted into") {
		t.Errorf("nixos.system did not reboot for the new kernel:\n%s", logText(ev))
	}
	checkBooted(t, sys, st.systemB, versionB, "landscaper.variant=b")
}

// logText is what a provider logged.
func logText(ev *sdktest.Events) string { return strings.Join(ev.Logs, "\n") }
