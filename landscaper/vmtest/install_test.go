package vmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/cpio"
)

// installBootLoader is what an installer runs once the system is in /mnt
// and its profile set, as nixos-install (nixos-enter) does: in a chroot of
// /mnt with /dev, /proc and /sys bound and a fresh /run, the system's
// activation script, then its own switch-to-configuration boot with
// NIXOS_INSTALL_BOOTLOADER=1, so that it installs the boot loader itself
// and not only its entries.
const installBootLoader = `set -e
for d in dev proc sys run; do mkdir -p /mnt/$d; done
mount --rbind /dev /mnt/dev
mount -t proc proc /mnt/proc
mount --rbind /sys /mnt/sys
mount -t tmpfs -o mode=0755 tmpfs /mnt/run
rc=0
chroot /mnt /nix/var/nix/profiles/system/activate || rc=$?
[ $rc -ne 0 ] || NIXOS_INSTALL_BOOTLOADER=1 chroot /mnt /nix/var/nix/profiles/system/bin/switch-to-configuration boot || rc=$?
umount -R /mnt/run /mnt/sys /mnt/proc /mnt/dev
exit $rc
`

// rebootMarkers are the milestones of a reboot into the disk on the serial
// console.
var rebootMarkers = []string{
	"reboot: Restarting system", "SeaBIOS", "Booting from ROM", "there is no boot entry for",
	"Booting from Hard Disk", "Linux version", "landscaper-standin stage 1: kernel",
	"landscaper-standin: stage 2 of", "ready; sshd starts", "Server listening on 0.0.0.0 port 22",
}

// TestInstallAndBootFromDisk installs a stand-in system onto the empty
// disk of a real VM by hand, step by step as nixos.install will, and boots
// it from its disk: power-on with network boot first, the installer from
// `landscaper serve` with the entry's host key, disko, nix copy into /mnt,
// the system profile, the boot loader, the host key, a reboot into the
// disk (the boot entry deleted, so iPXE leaves the machine to SeaBIOS's
// next device). Then it updates the installed system to one with another
// kernel and reboots into it, and boots the disk once more through iPXE's
// sanboot from a hand-written script.
func TestInstallAndBootFromDisk(t *testing.T) {
	requireTools(t)
	p := newPhases(t)

	p.begin("assets (scripts/vm-assets.sh)")
	a := vmAssets(t)
	p.begin("build landscaper")
	testbin.Dir(t)

	dir := t.TempDir()
	installerKey := newKey(t, dir, "installer-host-key")
	deployKey := newKey(t, dir, "deploy-key")
	systemKey := newKey(t, dir, "system-host-key")

	p.begin("build the stand-ins (nix-build)")
	st := buildStandins(t, a, deployKey.public)
	t.Logf("system A %s\nsystem B %s\ndisko    %s", st.systemA, st.systemB, st.disko)
	kernelA, kernelB := storePathOf(t, st.systemA+"/kernel"), storePathOf(t, st.systemB+"/kernel")
	if kernelA == kernelB {
		t.Fatalf("systems A and B have the same kernel %s; B should have another", kernelA)
	}
	versionA, versionB := a.kernels[0], a.kernels[len(a.kernels)-1]
	t.Logf("kernel of A: %s (%s), of B: %s (%s)", versionA, kernelA, versionB, kernelB)

	p.begin("boot server and entry")
	bootDir := filepath.Join(dir, "boot")
	s := startServer(t, bootDir)
	const mac = "52:54:00:4c:53:01"
	version := putEntry(t, bootDir, mac, a.kernel, []string{a.initrd}, "console=ttyS0,115200 panic=10", []cpio.File{
		{Path: hostKeyPath, Perm: 0o600, Data: installerKey.privateBytes(t)},
		{Path: authorizedKeysPath, Perm: 0o444, Data: []byte(deployKey.public + " deploy\n")},
	})
	t.Logf("boot entry of %s: version %s (installer %s, %s)", mac, version, a.kernel, a.initrd)
	disk := filepath.Join(dir, "disk.qcow2")
	run(t, nil, nil, "qemu-img", "create", "-q", "-f", "qcow2", disk, diskSize)
	sshPort := freePort(t, "tcp")

	p.begin("power-on to installer sshd")
	v := startVM(t, vmConfig{
		name: "install", mac: mac, disk: disk, sshPort: sshPort,
		bootfile: fmt.Sprintf("tftp://10.0.2.2:%d/boot.ipxe", s.tftpPort),
	})
	d := v.waitForHostKey(t, installerKey.public, v.started)
	t.Logf("the installer's sshd presents the entry's host key %s after QEMU started", d.Round(100*time.Millisecond))
	v.timeline(t, "power-on to installer", 0, v.started,
		"SeaBIOS", "Booting from ROM", "boot.ipxe", "Linux version", "Run /init", "landscaper-installer: starting", "landscaper-installer: ready", "Server listening on 0.0.0.0 port 22")
	serial := v.serial()
	for _, want := range []string{"iPXE", "landscaper-installer: host key from the boot entry", "root's authorized keys from " + authorizedKeysPath} {
		if !strings.Contains(serial, want) {
			t.Errorf("the installer's serial console has no %q", want)
		}
	}
	inst := newTarget(t, dir, sshPort, deployKey, installerKey.public)
	if out := inst.run(t, "cat "+installerMarker); !strings.Contains(out, "landscaper installer") {
		t.Errorf("%s on the installer holds %q", installerMarker, out)
	}
	// nixos.host-key reloads sshd with kill -HUP $(cat /run/sshd.pid).
	inst.run(t, "kill -0 $(cat /run/sshd.pid)")

	p.begin("copy disko; it refuses without the marker")
	inst.nixCopy(t, st.disko, "")
	out, err := inst.runErr(fmt.Sprintf("mv %[1]s %[1]s.away; rc=0; %[2]s || rc=$?; mv %[1]s.away %[1]s; echo rc=$rc; sfdisk -d /dev/vda 2>&1 || true", installerMarker, st.disko))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "rc=3") || strings.Contains(out, "label:") {
		t.Fatalf("without %s, disko should exit 3 and leave /dev/vda without a partition table; got:\n%s", installerMarker, out)
	}

	p.begin("disko: partition, format, mount /mnt")
	t.Logf("%s", inst.run(t, st.disko))
	if out := inst.run(t, "findmnt -n -o SOURCE,FSTYPE,LABEL /mnt"); strings.Join(strings.Fields(out), " ") != "/dev/vda1 ext4 nixos" {
		t.Fatalf("after disko, /mnt is %q, want /dev/vda1 ext4 nixos", out)
	}

	p.begin("nix copy the system into /mnt")
	inst.nixCopy(t, st.systemA, "local?root=/mnt")
	inst.run(t, "test -x /mnt"+st.systemA+"/init && test -e /mnt/nix/var/nix/db/db.sqlite")

	p.begin("set the system profile")
	inst.run(t, "nix-env --store /mnt -p /mnt/nix/var/nix/profiles/system --set "+st.systemA)
	if out := strings.TrimSpace(inst.run(t, "readlink /mnt/nix/var/nix/profiles/system-1-link")); out != st.systemA {
		t.Fatalf("the system profile's generation 1 is %q, want %s", out, st.systemA)
	}

	p.begin("install the boot loader (chroot)")
	t.Logf("%s", inst.run(t, installBootLoader))
	conf := inst.run(t, "cat /mnt/boot/extlinux/extlinux.conf; ls /mnt/boot/extlinux /mnt/boot/nixos")
	for _, want := range []string{"DEFAULT nixos-default", "init=" + st.systemA + "/init", "ldlinux.sys", filepath.Base(kernelA) + "-bzImage"} {
		if !strings.Contains(conf, want) {
			t.Errorf("/mnt/boot has no %q:\n%s", want, conf)
		}
	}
	mbr := sha256.Sum256([]byte(readFile(t, filepath.Join(a.parts, "userland", "share", "syslinux", "mbr.bin"))))
	if out := strings.Fields(inst.run(t, "dd if=/dev/vda bs=440 count=1 2>/dev/null | sha256sum")); len(out) == 0 || out[0] != hex.EncodeToString(mbr[:]) {
		t.Errorf("the first 440 bytes of /dev/vda are not syslinux's mbr.bin (sha256 %v)", out)
	}
	if out := inst.run(t, "sfdisk -d /dev/vda"); !strings.Contains(out, "bootable") {
		t.Errorf("/dev/vda1 is not active:\n%s", out)
	}

	p.begin("write the system's host key into /mnt")
	inst.runStdin(t, systemKey.privateBytes(t), "set -e; mkdir -p /mnt/etc/ssh; chmod 0755 /mnt/etc /mnt/etc/ssh; umask 077; cat >/mnt"+hostKeyPath+".tmp; mv /mnt"+hostKeyPath+".tmp /mnt"+hostKeyPath)
	inst.runStdin(t, []byte(systemKey.public+"\n"), "cat >/mnt"+hostKeyPath+".pub")

	p.begin("unmount, reboot, boot from the disk to sshd")
	inst.run(t, "sync; umount -R /mnt")
	// The machine is installed: without its entry, the boot server tells
	// its iPXE to exit, and SeaBIOS boots the next device, the disk.
	deleteEntry(t, bootDir, mac)
	offset := v.offset()
	rebootAt := time.Now()
	inst.reboot(t)
	d = v.waitForHostKey(t, systemKey.public, rebootAt)
	t.Logf("the installed system's sshd presents the host key written into /mnt %s after the reboot", d.Round(100*time.Millisecond))
	v.timeline(t, "reboot into the disk", offset, rebootAt, rebootMarkers...)
	after := v.log.raw()[offset:]
	for _, want := range []string{"there is no boot entry for " + mac, "Booting from Hard Disk", "landscaper-standin stage 1: root LABEL=nixos is /dev/vda1", "landscaper-standin: stage 2 of " + st.systemA} {
		if !strings.Contains(after, want) {
			t.Errorf("the serial console after the reboot has no %q", want)
		}
	}
	sys := newTarget(t, dir, sshPort, deployKey, systemKey.public)
	checkBooted(t, sys, st.systemA, versionA, "")
	sys.run(t, "kill -0 $(cat /run/sshd.pid)")

	p.begin("update to system B (another kernel), reboot")
	sys.nixCopy(t, st.systemB, "")
	sys.run(t, "nix-env -p /nix/var/nix/profiles/system --set "+st.systemB+" && "+st.systemB+"/bin/switch-to-configuration boot")
	// What the nixos provider's probe compares to tell that a reboot is
	// needed.
	if out := sys.run(t, `for f in kernel initrd kernel-modules; do [ "$(readlink -f /run/booted-system/$f)" = "$(readlink -f `+st.systemB+`/$f)" ] || echo "$f differs"; done`); !strings.Contains(out, "kernel differs") {
		t.Errorf("the booted system's kernel and B's should differ; the probe says %q", out)
	}
	offset = v.offset()
	rebootAt = time.Now()
	sys.reboot(t)
	// The same host key: wait until the running system is B.
	deadline := time.Now().Add(sshDeadline)
	for {
		time.Sleep(2 * time.Second)
		if out, err := sys.runErr("readlink /run/booted-system"); err == nil && strings.TrimSpace(out) == st.systemB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the VM did not boot system B within %s of the reboot", sshDeadline)
		}
	}
	t.Logf("the VM runs system B %s after the reboot", time.Since(rebootAt).Round(100*time.Millisecond))
	v.timeline(t, "reboot into system B", offset, rebootAt, rebootMarkers...)
	checkBooted(t, sys, st.systemB, versionB, "landscaper.variant=b")
	if out := sys.run(t, "cat /boot/extlinux/extlinux.conf"); !strings.Contains(out, "nixos-generation-2") || !strings.Contains(out, "init="+st.systemA+"/init") {
		t.Errorf("extlinux.conf should still list generation 1 (system A):\n%s", out)
	}

	p.begin("switch-to-configuration test, then switch")
	// As nixos.system activates: A for a test (the boot default stays B),
	// then B again with switch.
	sys.run(t, st.systemA+"/bin/switch-to-configuration test")
	if out := strings.Fields(sys.run(t, "readlink /run/current-system; readlink /run/booted-system; grep -m1 APPEND /boot/extlinux/extlinux.conf")); len(out) < 4 ||
		out[0] != st.systemA || out[1] != st.systemB || out[3] != "init="+st.systemB+"/init" {
		t.Errorf("after A's switch-to-configuration test: current, booted, default entry are %q; want %s, %s, and B's init", out, st.systemA, st.systemB)
	}
	sys.run(t, st.systemB+"/bin/switch-to-configuration switch")
	if out := strings.TrimSpace(sys.run(t, "readlink /run/current-system")); out != st.systemB {
		t.Errorf("after B's switch-to-configuration switch, /run/current-system is %q, want %s", out, st.systemB)
	}

	p.begin("sanboot: boot the disk from a hand-written iPXE script")
	sys.run(t, "sync; (sleep 1; poweroff) </dev/null >/dev/null 2>&1 &")
	v.waitExit(t, 2*time.Minute)
	tftp := t.TempDir()
	script := "#!ipxe\necho landscaper-vmtest: sanboot the first disk\nsanboot --no-describe --drive 0x80\n"
	if err := os.WriteFile(filepath.Join(tftp, "sanboot.ipxe"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := startVM(t, vmConfig{name: "sanboot", mac: mac, disk: disk, sshPort: sshPort, bootfile: "sanboot.ipxe", tftpDir: tftp})
	d = v2.waitForHostKey(t, systemKey.public, v2.started)
	t.Logf("booted from the disk by sanboot: sshd answers %s after QEMU started", d.Round(100*time.Millisecond))
	v2.timeline(t, "power-on to sanboot of the disk", 0, v2.started,
		"SeaBIOS", "Booting from ROM", "landscaper-vmtest: sanboot", "Linux version", "landscaper-standin stage 1: kernel", "landscaper-standin: stage 2 of", "ready; sshd starts", "Server listening on 0.0.0.0 port 22")
	serial = v2.serial()
	for _, want := range []string{"landscaper-vmtest: sanboot the first disk", "landscaper-standin: stage 2 of " + st.systemB} {
		if !strings.Contains(serial, want) {
			t.Errorf("the serial console of the sanboot VM has no %q", want)
		}
	}
	checkBooted(t, sys, st.systemB, versionB, "landscaper.variant=b")
}

// checkBooted checks what the installed system runs: the booted and current
// systems, the kernel version and command line, that it is not the
// installer, and that its sshd runs from the system's store path.
func checkBooted(t *testing.T, sys sshTarget, toplevel, kernelVersion, cmdlineWord string) {
	t.Helper()
	out := sys.run(t, "echo booted=$(readlink /run/booted-system); echo current=$(readlink /run/current-system); "+
		"echo kernel=$(uname -r); echo cmdline=$(cat /proc/cmdline); echo profile=$(readlink -f /nix/var/nix/profiles/system); "+
		"test -e "+installerMarker+" && echo installer=yes; echo root=$(awk '$2 == \"/\" { print $1 }' /proc/mounts)")
	t.Logf("the installed system reports:\n%s", out)
	kv := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	if kv["booted"] != toplevel || kv["current"] != toplevel {
		t.Errorf("/run/booted-system is %q and /run/current-system %q, want %s", kv["booted"], kv["current"], toplevel)
	}
	if kv["kernel"] != kernelVersion {
		t.Errorf("the kernel is %q, want %s", kv["kernel"], kernelVersion)
	}
	if !strings.Contains(kv["cmdline"], "init="+toplevel+"/init") || (cmdlineWord != "" && !strings.Contains(kv["cmdline"], cmdlineWord)) {
		t.Errorf("the kernel command line %q lacks init=%s/init or %q", kv["cmdline"], toplevel, cmdlineWord)
	}
	if kv["installer"] != "" {
		t.Errorf("the installed system has %s", installerMarker)
	}
	if kv["root"] != "/dev/vda1" {
		t.Errorf("/ is %q, want /dev/vda1", kv["root"])
	}
}
