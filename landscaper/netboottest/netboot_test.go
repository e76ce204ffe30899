package netboottest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

var (
	sharedOnce sync.Once
	shared     deployment
	sharedErr  error
)

// sharedDeployment is the deployment with an entry for knownMAC that
// TestBootOverTFTP, TestBootOverHTTP and TestUnknownMACDoesNotBoot boot
// from, applied once per test process.
func sharedDeployment(t *testing.T) (deployment, assets) {
	t.Helper()
	a := bootAssets(t)
	bin := testbin.Dir(t)
	sharedOnce.Do(func() {
		parent := filepath.Join(tmpRoot, "shared")
		d := newDeployment(t, parent, knownMAC, a, defaultEntry)
		out, err := runLandscaper(bin, d.dir, "apply", "--auto-approve")
		if err == nil && !strings.Contains(out, "1 added") {
			err = fmt.Errorf("landscaper apply did not add the entry:\n%s", out)
		}
		shared, sharedErr = d, err
	})
	if sharedErr != nil {
		t.Fatalf("apply the shared deployment: %v", sharedErr)
	}
	return shared, a
}

// TestNetbootAssets: scripts/netboot-assets.sh makes a kernel and a gzip'd
// newc initrd with /init and a static busybox; a second run changes
// nothing, and the initrd's bytes depend only on its inputs.
func TestNetbootAssets(t *testing.T) {
	a := bootAssets(t)
	dir := t.TempDir()
	if out, err := runAssetsScript(t, dir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	infos := map[string]os.FileInfo{}
	for _, name := range []string{"vmlinuz", "initrd.gz"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("the script did not make %s: %v", name, err)
		}
		infos[name] = fi
	}
	start := time.Now()
	out, err := runAssetsScript(t, dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "up to date") {
		t.Errorf("a second run of the script did not find %s up to date:\n%s", dir, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a second run of the script took %s; it should only check", d)
	}
	for name, before := range infos {
		after, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("a second run of the script rewrote %s", name)
		}
	}

	// The same kernel, busybox and script make the same initrd.
	mine, err := os.ReadFile(filepath.Join(dir, "initrd.gz"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile(a.initrd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine, theirs) {
		t.Errorf("two runs of the script made different initrds (%d and %d bytes)", len(mine), len(theirs))
	}
	if len(mine) < 2 || mine[0] != 0x1f || mine[1] != 0x8b {
		t.Errorf("initrd.gz is not gzip")
	}
	list := exec.Command("sh", "-c", `gzip -dc "$1" | cpio -it --quiet`, "sh", filepath.Join(dir, "initrd.gz"))
	listing, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("list the initrd: %v\n%s", err, listing)
	}
	names := strings.Fields(string(listing))
	for _, want := range []string{"init", "bin/busybox", "bin/sh", "dev", "proc", "sys"} {
		if !slices.Contains(names, want) {
			t.Errorf("the initrd has no %s; it has %v", want, names)
		}
	}
	kernel, err := os.ReadFile(filepath.Join(dir, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	// A bzImage has "HdrS" at offset 0x202.
	if len(kernel) < 0x206 || string(kernel[0x202:0x206]) != "HdrS" {
		t.Errorf("vmlinuz is not a bzImage")
	}
}

// TestBootOverTFTP: after `landscaper apply` made the entry, a VM with
// that MAC boots from `landscaper serve` over TFTP (boot.ipxe, its own
// script, the kernel, the initrd and the extra archive of its files), and
// the booted initrd sees the command line of the entry and the file of
// its `files`, with its mode.
func TestBootOverTFTP(t *testing.T) {
	d, a := sharedDeployment(t)
	version := d.entryVersion(t, knownMAC)
	if version == "" {
		t.Fatalf("apply wrote no entry for %s under %s", knownMAC, d.bootDir)
	}
	s := startServer(t, d.bootDir, false)
	b := bootVM(t, knownMAC, s.tftpPort, nil)
	defer report(t, b, s)

	checkBooted(t, b, defaultEntry)
	reqs := s.requests(0)
	checkScripts(t, reqs, knownMAC, version)
	checkServed(t, reqs, "tftp", knownMAC, version, a)
	m := s.metrics(t)
	if n := m[`landscaper_boot_requests_total{protocol="tftp",outcome="ok"}`]; n < 5 {
		t.Errorf("/metrics counts %d TFTP requests served, want at least 5 (boot.ipxe, machine script, kernel, initrd, extra.cpio)", n)
	}
	if n := m[`landscaper_boot_sent_bytes_total{protocol="tftp"}`]; n < a.kernelSize+a.initrdSize {
		t.Errorf("/metrics counts %d bytes sent over TFTP, want at least the kernel's and the initrd's %d", n, a.kernelSize+a.initrdSize)
	}
	if n := m[`landscaper_boot_requests_total{protocol="http",outcome="ok"}`]; n != 0 {
		t.Errorf("/metrics counts %d HTTP requests; without --http-url everything should come over TFTP", n)
	}
}

// TestBootOverHTTP: with --http-url, the scripts still come over TFTP (the
// firmware's bootfile), but the kernel, the initrd and the extra archive
// come over HTTP.
func TestBootOverHTTP(t *testing.T) {
	d, a := sharedDeployment(t)
	version := d.entryVersion(t, knownMAC)
	if version == "" {
		t.Fatalf("apply wrote no entry for %s under %s", knownMAC, d.bootDir)
	}
	s := startServer(t, d.bootDir, true)
	b := bootVM(t, knownMAC, s.tftpPort, nil)
	defer report(t, b, s)

	checkBooted(t, b, defaultEntry)
	want := fmt.Sprintf("http://10.0.2.2:%d/v/%s/%s/kernel", s.httpPort, hyphens(knownMAC), version)
	if !strings.Contains(b.serial, want) {
		t.Errorf("iPXE did not print that it fetched %s", want)
	}
	reqs := s.requests(0)
	checkScripts(t, reqs, knownMAC, version)
	checkServed(t, reqs, "http", knownMAC, version, a)
	for _, r := range reqs {
		if r["protocol"] == "tftp" && strings.Contains(r["file"], "v/") {
			t.Errorf("with --http-url, a boot file came over TFTP: %v", r)
		}
	}
	m := s.metrics(t)
	if n := m[`landscaper_boot_requests_total{protocol="http",outcome="ok"}`]; n < 3 {
		t.Errorf("/metrics counts %d HTTP requests served, want at least 3 (kernel, initrd, extra.cpio)", n)
	}
	if n := m[`landscaper_boot_sent_bytes_total{protocol="http"}`]; n < a.kernelSize+a.initrdSize {
		t.Errorf("/metrics counts %d bytes sent over HTTP, want at least the kernel's and the initrd's %d", n, a.kernelSize+a.initrdSize)
	}
	if n := m[`landscaper_boot_sent_bytes_total{protocol="tftp"}`]; n > 64<<10 {
		t.Errorf("/metrics counts %d bytes sent over TFTP; with --http-url only the scripts should be", n)
	}
}

// TestUnknownMACDoesNotBoot: a VM whose MAC has no entry gets the script
// that says so and leaves iPXE; the firmware goes on to its next boot
// device (there is none: "No bootable device") and the kernel never runs.
func TestUnknownMACDoesNotBoot(t *testing.T) {
	d, _ := sharedDeployment(t)
	s := startServer(t, d.bootDir, false)
	b := bootVM(t, unknownMAC, s.tftpPort, firmwareGaveUp)
	defer report(t, b, s)
	checkNotBooted(t, b, s.requests(0), unknownMAC)
}

// TestEntryLifecycle: a VM boots from its entry; after `landscaper apply`
// changed the entry (the file's contents and mode), the same VM, from the
// same running server, boots the new version; after `landscaper destroy`
// it no longer boots a kernel.
func TestEntryLifecycle(t *testing.T) {
	a := bootAssets(t)
	d := newDeployment(t, t.TempDir(), knownMAC, a, defaultEntry)
	landscaper(t, d.dir, "apply", "--auto-approve")
	v1 := d.entryVersion(t, knownMAC)
	if v1 == "" {
		t.Fatalf("apply wrote no entry for %s under %s", knownMAC, d.bootDir)
	}
	s := startServer(t, d.bootDir, false)

	// 1. The entry as created.
	first := bootVM(t, knownMAC, s.tftpPort, nil)
	checkBooted(t, first, defaultEntry)
	checkServed(t, s.requests(0), "tftp", knownMAC, v1, a)
	report(t, first, s)
	if t.Failed() {
		t.FailNow()
	}

	// 2. The entry changed: new contents, another mode.
	changed := entrySpec{contents: "hello again from landscaper", mode: "600"}
	d.write(t, knownMAC, a, changed)
	out := landscaper(t, d.dir, "apply", "--auto-approve")
	v2 := d.entryVersion(t, knownMAC)
	if v2 == "" || v2 == v1 {
		t.Fatalf("after changing the entry's files, the entry points at version %q (was %q)\n%s", v2, v1, out)
	}
	from := s.log.Len()
	second := bootVM(t, knownMAC, s.tftpPort, nil)
	checkBooted(t, second, changed)
	reqs := s.requests(from)
	checkScripts(t, reqs, knownMAC, v2)
	checkServed(t, reqs, "tftp", knownMAC, v2, a)
	for _, r := range reqs {
		if strings.Contains(r["file"], v1) || r["version"] == v1 {
			t.Errorf("after the update the VM was served from the old version %s: %v", v1, r)
		}
	}
	report(t, second, s)
	if t.Failed() {
		t.FailNow()
	}

	// 3. The entry destroyed.
	out = landscaper(t, d.dir, "destroy", "--auto-approve")
	if !strings.Contains(out, "1 destroyed") {
		t.Errorf("landscaper destroy did not destroy the entry:\n%s", out)
	}
	if v := d.entryVersion(t, knownMAC); v != "" {
		t.Fatalf("after destroy the entry of %s still points at version %s", knownMAC, v)
	}
	for _, v := range []string{v1, v2} {
		if _, err := os.Stat(filepath.Join(d.bootDir, "versions", hyphens(knownMAC), v)); !os.IsNotExist(err) {
			t.Errorf("after destroy the version %s is still there (%v)", v, err)
		}
	}
	from = s.log.Len()
	third := bootVM(t, knownMAC, s.tftpPort, firmwareGaveUp)
	defer report(t, third, s)
	checkNotBooted(t, third, s.requests(from), knownMAC)
}

// iPXE asks for TFTP blocks of 1432 bytes (TFTP_MAX_BLKSIZE in its
// src/net/udp/tftp.c; seen on the wire with the ipxe-qemu ROM), so a file
// of more than 65535 × 1432 bytes makes the 16-bit block number wrap.
const (
	ipxeBlockSize = 1432
	bigInitrdSize = 100_000_000
)

// TestBigInitrdOverTFTP: a second initrd of 100 MB, more than 65535 blocks
// of iPXE's size, comes whole over TFTP: the booted kernel unpacks it and
// /init prints the sha256 of the file inside.
func TestBigInitrdOverTFTP(t *testing.T) {
	if bigInitrdSize/ipxeBlockSize <= 65535 {
		t.Fatalf("the big initrd (%d bytes) is not more than 65535 blocks of %d bytes", bigInitrdSize, ipxeBlockSize)
	}
	a := bootAssets(t)
	dir := t.TempDir()
	big, sum := bigInitrd(t, dir, bigInitrdSize)
	fi, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	e := defaultEntry
	e.extraInitrds = []string{big}
	e.extraCmdline = "landscaper.sum=/big.bin"
	d := newDeployment(t, dir, knownMAC, a, e)
	landscaper(t, d.dir, "apply", "--auto-approve")
	version := d.entryVersion(t, knownMAC)
	if version == "" {
		t.Fatalf("apply wrote no entry for %s under %s", knownMAC, d.bootDir)
	}
	s := startServer(t, d.bootDir, false)
	b := bootVM(t, knownMAC, s.tftpPort, nil)
	defer report(t, b, s)

	checkBooted(t, b, e)
	if got, want := b.lines("LANDSCAPER-SHA256: "), []string{sum + " /big.bin"}; !slices.Equal(got, want) {
		t.Errorf("the booted initrd printed sha256 %q, want %q", got, want)
	}
	reqs := s.requests(0)
	checkServed(t, reqs, "tftp", knownMAC, version, a)
	name := "v/" + hyphens(knownMAC) + "/" + version + "/initrd/1"
	if r := findRequest(reqs, "tftp", name); r == nil || r["outcome"] != "ok" || r["bytes"] != fmt.Sprint((fi.Size()+3)/4*4) {
		t.Errorf("the server did not log %s sent whole (%d bytes) over TFTP: %v", name, fi.Size(), r)
	}
}

// bigInitrd writes an uncompressed newc cpio archive holding /big.bin,
// size bytes of pseudo-random data, and returns its path and big.bin's
// sha256.
func bigInitrd(t *testing.T, dir string, size int) (path, sum string) {
	t.Helper()
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal("cpio not found: install Debian's cpio (scripts/install-deps.sh installs it)")
	}
	root := filepath.Join(dir, "bigroot")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.New(rand.NewChaCha8([32]byte{'l', 'a', 'n', 'd', 's', 'c', 'a', 'p', 'e', 'r'}))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(buf) {
		if left < len(buf) {
			buf = buf[:left]
		}
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
		}
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "big.cpio")
	cmd := exec.Command("sh", "-c", `printf 'big.bin\n' | cpio --quiet -o -H newc --owner=0:0 > "$1"`, "sh", path)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	os.RemoveAll(root)
	return path, hex.EncodeToString(h.Sum(nil))
}

// firmwareGaveUp is true once SeaBIOS has tried every boot device: iPXE
// exited, so the machine went on past the network.
func firmwareGaveUp(serial string) bool {
	return strings.Contains(serial, "No bootable device")
}

func hyphens(mac string) string { return strings.ReplaceAll(mac, ":", "-") }

// checkBooted checks that the VM booted the kernel and initrd of entry e
// and that /init printed what e says, then powered off.
func checkBooted(t *testing.T, b boot, e entrySpec) {
	t.Helper()
	if b.timedOut {
		t.Errorf("the VM did not power off within %s", bootDeadline)
	}
	cmdlines := b.lines("LANDSCAPER-CMDLINE: ")
	if len(cmdlines) != 1 {
		t.Fatalf("the initrd printed %d kernel command lines, want 1 (did the kernel boot?)", len(cmdlines))
	}
	words := strings.Fields(cmdlines[0])
	for _, w := range strings.Fields(e.cmdline()) {
		if !slices.Contains(words, w) {
			t.Errorf("the kernel command line %q lacks %q from the entry's cmdline", cmdlines[0], w)
		}
	}
	if got := b.lines("LANDSCAPER-FILE: "); !slices.Equal(got, []string{e.contents}) {
		t.Errorf("the initrd printed %q as the contents of %s, want %q (missing: %q)", got, checkPath, e.contents, b.lines("LANDSCAPER-MISSING: "))
	}
	if got := b.lines("LANDSCAPER-MODE: "); !slices.Equal(got, []string{e.mode}) {
		t.Errorf("the initrd printed %q as the mode of %s, want %q", got, checkPath, e.mode)
	}
	if len(b.lines("LANDSCAPER-DONE")) != 1 {
		t.Errorf("the initrd's /init did not finish")
	}
	if !b.poweredOff {
		t.Errorf("QEMU did not exit after /init powered off")
	}
}

// checkScripts checks that the machine fetched boot.ipxe and its own
// script, naming the entry's version, over TFTP.
func checkScripts(t *testing.T, reqs []request, mac, version string) {
	t.Helper()
	if r := findRequest(reqs, "tftp", "boot.ipxe"); r == nil || r["outcome"] != "ok" {
		t.Errorf("no TFTP request for boot.ipxe served ok: %v", r)
	}
	r := findRequest(reqs, "tftp", "machine/"+hyphens(mac)+".ipxe")
	if r == nil || r["outcome"] != "ok" || r["mac"] != mac || r["version"] != version {
		t.Errorf("no TFTP request for the script of %s, version %s, served ok: %v", mac, version, r)
	}
}

// checkServed checks the server's log lines for the kernel, the initrd and
// the extra archive of the version, over protocol: served whole, to mac.
func checkServed(t *testing.T, reqs []request, protocol, mac, version string, a assets) {
	t.Helper()
	prefix := "v/" + hyphens(mac) + "/" + version + "/"
	if protocol == "http" {
		prefix = "/" + prefix
	}
	for _, f := range []struct {
		name string
		size int64
	}{{"kernel", a.kernelSize}, {"initrd/0", (a.initrdSize + 3) / 4 * 4}, {"extra.cpio", -1}} {
		r := findRequest(reqs, protocol, prefix+f.name)
		if r == nil {
			t.Errorf("the server logged no %s request for %s%s", protocol, prefix, f.name)
			continue
		}
		if r["outcome"] != "ok" || r["mac"] != mac || r["version"] != version {
			t.Errorf("%s request for %s: %v, want outcome ok, mac %s, version %s", protocol, f.name, r, mac, version)
		}
		if f.size >= 0 && r["bytes"] != fmt.Sprint(f.size) {
			t.Errorf("%s request for %s sent %s bytes, want %d", protocol, f.name, r["bytes"], f.size)
		}
	}
}

// checkNotBooted checks that a VM whose MAC has no entry did not boot a
// kernel: the server sent it the no-entry script (and logged so), iPXE
// printed why, and the firmware went on to its next boot device.
func checkNotBooted(t *testing.T, b boot, reqs []request, mac string) {
	t.Helper()
	if b.timedOut {
		t.Errorf("the firmware did not give up within %s (want \"No bootable device\" after iPXE exits)", bootDeadline)
	}
	if n := len(b.lines("LANDSCAPER-CMDLINE")); n != 0 || strings.Contains(b.serial, "Linux version") {
		t.Errorf("a VM with MAC %s, which has no entry, booted a kernel", mac)
	}
	if want := "landscaper: there is no boot entry for " + mac; !strings.Contains(b.serial, want) {
		t.Errorf("iPXE did not print %q", want)
	}
	r := findRequest(reqs, "tftp", "machine/"+hyphens(mac)+".ipxe")
	if r == nil || r["outcome"] != "no_entry" || r["level"] != "WARN" || r["mac"] != mac {
		t.Errorf("the server did not log a no_entry warning for %s: %v", mac, r)
	}
	for _, r := range reqs {
		if strings.Contains(r["file"], "v/") {
			t.Errorf("a VM without an entry asked for a boot file: %v", r)
		}
	}
}

// findRequest returns the last log line of a request for file over
// protocol, or nil.
func findRequest(reqs []request, protocol, file string) request {
	var found request
	for _, r := range reqs {
		if r["protocol"] == protocol && r["file"] == file {
			found = r
		}
	}
	return found
}

// TestBootUEFI: under UEFI firmware (OVMF with iPXE's EFI ROM) the kernel's
// EFI stub loads the initrds and joins them without aligning them; an
// initrd whose size is not a multiple of 4 bytes, followed by the extra
// archive, lost the archive ("Initramfs unpacking failed: invalid magic")
// until the server padded every initrd it serves to a multiple of 4. The
// entry has such an initrd (and the extra archive after it): the booted
// initrd must still see the file of the entry's files.
func TestBootUEFI(t *testing.T) {
	a := bootAssets(t)
	dir := t.TempDir()
	odd := oddInitrd(t, dir)
	e := defaultEntry
	e.extraInitrds = []string{odd}
	d := newDeployment(t, dir, knownMAC, a, e)
	landscaper(t, d.dir, "apply", "--auto-approve")
	version := d.entryVersion(t, knownMAC)
	if version == "" {
		t.Fatalf("apply wrote no entry for %s under %s", knownMAC, d.bootDir)
	}
	for _, http := range []bool{false, true} {
		s := startServer(t, d.bootDir, http)
		b := bootVMWith(t, knownMAC, s.tftpPort, nil, uefiFirmware)
		checkBooted(t, b, e)
		if strings.Contains(b.serial, "invalid magic") {
			t.Errorf("the kernel could not unpack an initrd (http %v)", http)
		}
		report(t, b, s)
		if t.Failed() {
			return
		}
	}
}

// oddInitrd writes a gzipped newc archive (one small file) whose size is
// not a multiple of 4 bytes.
func oddInitrd(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "oddroot")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "odd.cpio.gz")
	for n := 1; n < 64; n++ {
		if err := os.WriteFile(filepath.Join(root, "odd.txt"), []byte(strings.Repeat("odd ", n)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet | gzip -9n > "+out)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make the odd initrd: %v: %s", err, b)
		}
		if fi, err := os.Stat(out); err == nil && fi.Size()%4 != 0 {
			return out
		}
	}
	t.Fatal("no gzipped archive of an odd size")
	return ""
}
