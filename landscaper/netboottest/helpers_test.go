package netboottest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

const (
	// commandTimeout bounds one landscaper apply or destroy.
	commandTimeout = 3 * time.Minute
	// bootDeadline bounds one VM. A boot takes about 10 s under TCG on a
	// 2-CPU machine (firmware, iPXE, 15 MB over TFTP, the kernel), a
	// machine without an entry reaches "No bootable device" in about 5 s.
	bootDeadline = 3 * time.Minute
	// serverStartTimeout bounds how long landscaper serve may take to
	// listen, serverStopTimeout how long it may take to drain and exit
	// after SIGTERM.
	serverStartTimeout = 30 * time.Second
	serverStopTimeout  = 20 * time.Second

	// The machine with an entry, and one without.
	knownMAC   = "52:54:00:12:34:56"
	unknownMAC = "52:54:00:aa:bb:cc"

	// The file the entries put into the initrd, and the command line
	// that tells the initrd's /init to print it (see entrySpec).
	checkPath = "/etc/landscaper/hello"
	cmdline   = "console=ttyS0 landscaper.check=" + checkPath + " panic=-1"

	// QEMU, and the iPXE ROM of its e1000 card from Debian's ipxe-qemu.
	// The ROM is named explicitly so the test does not depend on where
	// QEMU looks for its default. (ipxe-qemu's virtio ROMs are built for
	// the modern virtio-net device ID 1af4:1041; on the pc machine
	// virtio-net-pci is the transitional 1af4:1000, and SeaBIOS does not
	// run a ROM named by romfile= whose ID differs; QEMU patches the ID
	// only into its default ROM. The e1000 ROM's 8086:100e matches.)
	qemuBinary = "qemu-system-x86_64"
	nicModel   = "e1000"
	nicROM     = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
	// ipxeDir is what landscaper serve --ipxe-dir serves, from Debian's ipxe.
	ipxeDir = "/usr/lib/ipxe"
)

// requireTools fails the test, naming the Debian package that
// scripts/install-deps.sh installs, for each tool the VM tests need that is
// missing. The kernel, busybox, cpio and gzip are checked by
// scripts/netboot-assets.sh, which names their packages the same way.
func requireTools(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath(qemuBinary); err != nil {
		missing = append(missing, qemuBinary+" not found: install Debian's qemu-system-x86")
	}
	if _, err := os.Stat(nicROM); err != nil {
		missing = append(missing, nicROM+" not found: install Debian's ipxe-qemu")
	}
	if _, err := os.Stat(filepath.Join(ipxeDir, "undionly.kpxe")); err != nil {
		missing = append(missing, ipxeDir+"/undionly.kpxe not found: install Debian's ipxe")
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		missing = append(missing, "nix-instantiate not found: install Debian's nix-bin")
	}
	if len(missing) > 0 {
		t.Fatalf("the network boot tests need tools that are missing (scripts/install-deps.sh installs them):\n  %s", strings.Join(missing, "\n  "))
	}
}

// accel is QEMU's accelerator: TCG unless LANDSCAPER_NETBOOT_ACCEL says
// otherwise. TCG is the default because it works everywhere and is fast
// enough (a boot takes about 10 s); /dev/kvm may be present and still not
// work (on the development machine, a nested VM, KVM guests hang).
func accel() string {
	if a := os.Getenv("LANDSCAPER_NETBOOT_ACCEL"); a != "" {
		return a
	}
	return "tcg"
}

// assets are the kernel and initrd scripts/netboot-assets.sh makes.
type assets struct {
	kernel, initrd string
	kernelSize     int64
	initrdSize     int64
}

var (
	assetsOnce sync.Once
	assetsVal  assets
	assetsErr  error
)

// bootAssets builds the kernel and initrd once per test process.
func bootAssets(t *testing.T) assets {
	t.Helper()
	requireTools(t)
	assetsOnce.Do(func() {
		dir := filepath.Join(tmpRoot, "assets")
		out, err := runAssetsScript(t, dir)
		if err != nil {
			assetsErr = fmt.Errorf("%v\n%s", err, out)
			return
		}
		a := assets{kernel: filepath.Join(dir, "vmlinuz"), initrd: filepath.Join(dir, "initrd.gz")}
		for _, f := range []struct {
			path string
			size *int64
		}{{a.kernel, &a.kernelSize}, {a.initrd, &a.initrdSize}} {
			fi, err := os.Stat(f.path)
			if err != nil {
				assetsErr = fmt.Errorf("scripts/netboot-assets.sh did not make %s: %v\n%s", f.path, err, out)
				return
			}
			*f.size = fi.Size()
		}
		assetsVal = a
	})
	if assetsErr != nil {
		t.Fatalf("make the boot assets: %v", assetsErr)
	}
	return assetsVal
}

// runAssetsScript runs scripts/netboot-assets.sh DIR.
func runAssetsScript(t *testing.T, dir string) (string, error) {
	t.Helper()
	script := filepath.Join(testbin.Root(t), "scripts", "netboot-assets.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("scripts/netboot-assets.sh %s: %v", dir, err)
	}
	return string(out), nil
}

// deployment is a directory with a landscaper.nix holding one
// pxe-nbp.entry, "boot", whose boot directory is bootDir.
type deployment struct {
	dir, bootDir string
}

// entrySpec is what differs between the entries the tests write: the
// contents and mode of the file at checkPath, initrds loaded after the
// busybox one, and words added to the command line.
type entrySpec struct {
	contents string
	// mode is what /init prints (stat -c %a): "640".
	mode         string
	extraInitrds []string
	extraCmdline string
}

// defaultEntry is the entry of the example.
var defaultEntry = entrySpec{contents: "hello from landscaper", mode: "640"}

func (e entrySpec) cmdline() string {
	if e.extraCmdline == "" {
		return cmdline
	}
	return cmdline + " " + e.extraCmdline
}

// newDeployment writes a deployment with an entry for mac into a new
// directory under parent.
func newDeployment(t *testing.T, parent, mac string, a assets, e entrySpec) deployment {
	t.Helper()
	d := deployment{dir: filepath.Join(parent, "deployment"), bootDir: filepath.Join(parent, "boot")}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.write(t, mac, a, e)
	return d
}

// write (re)writes the deployment's landscaper.nix.
func (d deployment) write(t *testing.T, mac string, a assets, e entrySpec) {
	t.Helper()
	initrds := fmt.Sprintf("%q", a.initrd)
	for _, p := range e.extraInitrds {
		initrds += fmt.Sprintf(" %q", p)
	}
	nix := fmt.Sprintf(`{ members, providers, ... }: {
  members.boot = {
    type = providers.pxe-nbp.entry;
    inputs = {
      mac = %q;
      kernel = %q;
      initrd = [ %s ];
      cmdline = %q;
      files.%q = { contents = %q; mode = "0%s"; };
      bootDir = %q;
    };
  };
}
`, mac, a.kernel, initrds, e.cmdline(), checkPath, e.contents, e.mode, d.bootDir)
	if err := os.WriteFile(filepath.Join(d.dir, "landscaper.nix"), []byte(nix), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entryVersion returns the version the entry of mac points at, or "" when
// there is no entry (the layout of package bootentry).
func (d deployment) entryVersion(t *testing.T, mac string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(d.bootDir, "entries", strings.ReplaceAll(mac, ":", "-")))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatalf("read the entry of %s: %v", mac, err)
	}
	return filepath.Base(target)
}

// landscaper runs the landscaper binary in dir and fails the test unless it
// exits 0.
func landscaper(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := runLandscaper(testbin.Dir(t), dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runLandscaper runs the landscaper binary of binDir in dir and returns
// what it printed; an exit other than 0 is an error. The machine is
// offline: NIX_CONFIG empties the substituters.
func runLandscaper(binDir, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = testbin.Env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("landscaper %s timed out after %s\n%s", strings.Join(args, " "), commandTimeout, out.String())
	}
	if err != nil {
		return out.String(), fmt.Errorf("landscaper %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// server is a running `landscaper serve`.
type server struct {
	cmd      *exec.Cmd
	log      *testbin.Output
	tftpPort int
	httpPort int
	exited   chan struct{}
	waitErr  error
	stopped  bool
}

// startServer starts landscaper serve on free loopback ports with the
// boot directory bootDir and Debian's iPXE binaries. With httpURL, scripts
// send the machines to http://10.0.2.2:<http port>/ for kernels and
// initrds: QEMU's user networking forwards 10.0.2.2 to the host's
// 127.0.0.1. The server is stopped (SIGTERM) when the test ends.
func startServer(t *testing.T, bootDir string, httpURL bool) *server {
	t.Helper()
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	var lastErr string
	// A free port can be taken between choosing it and listening on it;
	// try again with others then.
	for attempt := 0; attempt < 3; attempt++ {
		s := &server{log: &testbin.Output{}, tftpPort: freeUDPPort(t), httpPort: freeTCPPort(t), exited: make(chan struct{})}
		args := []string{"serve",
			"--boot-dir", bootDir,
			"--tftp-listen", fmt.Sprintf("127.0.0.1:%d", s.tftpPort),
			"--http-listen", fmt.Sprintf("127.0.0.1:%d", s.httpPort),
			"--ipxe-dir", ipxeDir,
		}
		if httpURL {
			args = append(args, "--http-url", fmt.Sprintf("http://10.0.2.2:%d/", s.httpPort))
		}
		s.cmd = exec.Command(bin, args...)
		s.cmd.Env = testbin.Env()
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start landscaper %s: %v", strings.Join(args, " "), err)
		}
		go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
		deadline := time.After(serverStartTimeout)
	wait:
		for {
			select {
			case <-s.exited:
				lastErr = fmt.Sprintf("landscaper %s exited before listening: %v\n%s", strings.Join(args, " "), s.waitErr, s.log.String())
				if strings.Contains(s.log.String(), "address already in use") {
					break wait
				}
				t.Fatal(lastErr)
			case <-deadline:
				s.cmd.Process.Kill()
				<-s.exited
				t.Fatalf("landscaper serve did not listen within %s\n%s", serverStartTimeout, s.log.String())
			case <-time.After(20 * time.Millisecond):
				if strings.Contains(s.log.String(), `msg="boot server listening"`) {
					t.Cleanup(func() { s.stop(t) })
					t.Logf("landscaper %s", strings.Join(args, " "))
					return s
				}
			}
		}
	}
	t.Fatal(lastErr)
	return nil
}

// stop sends SIGTERM and checks that the server drains and exits 0. It
// kills a server that does not stop in time. Safe to call twice.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("landscaper serve did not exit within %s of SIGTERM; killed it\n%s", serverStopTimeout, s.log.String())
		return
	}
	if s.waitErr != nil {
		t.Errorf("landscaper serve exited with %v after SIGTERM, want 0\n%s", s.waitErr, s.log.String())
	} else if !strings.Contains(s.log.String(), `msg="boot server stopped"`) {
		t.Errorf("landscaper serve exited without logging that it stopped\n%s", s.log.String())
	}
}

// request is one "boot request" log line of the server, as key=value pairs
// (slog's text format), plus "level".
type request map[string]string

// requests returns the server's "boot request" log lines from byte offset
// from of its log on.
func (s *server) requests(from int) []request {
	var out []request
	log := s.log.String()
	if from > len(log) {
		from = len(log)
	}
	sc := bufio.NewScanner(strings.NewReader(log[from:]))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		kv := parseLogLine(sc.Text())
		if kv["msg"] == "boot request" {
			out = append(out, kv)
		}
	}
	return out
}

// parseLogLine splits a slog text line into its keys and values.
func parseLogLine(line string) map[string]string {
	kv := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			break
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			// A quoted value: find its closing quote.
			end := 1
			for end < len(line) && line[end] != '"' {
				if line[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(line) {
				end = len(line) - 1
			}
			if uq, err := strconv.Unquote(line[:end+1]); err == nil {
				val = uq
			} else {
				val = line[1:end]
			}
			line = line[end+1:]
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				sp = len(line)
			}
			val, line = line[:sp], line[sp:]
		}
		kv[key] = val
	}
	return kv
}

// metrics fetches /metrics from the server's HTTP listener.
func (s *server) metrics(t *testing.T) map[string]int64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.httpPort))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v\n%s", resp.Status, err, body)
	}
	m := map[string]int64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		n, err := strconv.ParseInt(l[i+1:], 10, 64)
		if err == nil {
			m[l[:i]] = n
		}
	}
	return m
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// boot is one VM run.
type boot struct {
	mac string
	// serial is what the VM printed (firmware, iPXE, kernel, init), with
	// terminal escape sequences and carriage returns removed.
	serial string
	// poweredOff: QEMU exited by itself (the initrd powered off, or a
	// reboot, which -no-reboot turns into an exit).
	poweredOff bool
	// stopped: the test stopped the VM because stopWhen said so.
	stopped bool
	// timedOut: the test killed the VM at the deadline.
	timedOut bool
	duration time.Duration
	exitErr  error
}

// bootVM boots a QEMU VM with one e1000 card whose MAC is mac, from the
// network only. Its iPXE ROM gets its address from QEMU's user networking
// (slirp) DHCP server, whose bootfile option is
// tftp://10.0.2.2:<port>/boot.ipxe; iPXE fetches that URL itself, and slirp
// forwards 10.0.2.2 (the host as the guest sees it) to the host's
// 127.0.0.1, where the server listens. The VM is stopped as soon as
// stopWhen (if not nil) is true of its serial output, or at the deadline.
// Only one VM runs at a time.
func bootVM(t *testing.T, mac string, tftpPort int, stopWhen func(serial string) bool) boot {
	t.Helper()
	return bootVMWith(t, mac, tftpPort, stopWhen, biosFirmware)
}

// firmware is what the VM starts with.
type firmware int

const (
	// biosFirmware is QEMU's SeaBIOS with the e1000's iPXE ROM.
	biosFirmware firmware = iota
	// uefiFirmware is OVMF (Debian's ovmf) with the e1000's iPXE EFI ROM.
	uefiFirmware
)

// ovmfCode is Debian's OVMF firmware image.
const (
	ovmfCode   = "/usr/share/ovmf/OVMF.fd"
	efiNICROM  = "/usr/lib/ipxe/qemu/efi-e1000.rom"
	uefiMemory = "1024"
)

// bootVMWith is bootVM with the given firmware.
func bootVMWith(t *testing.T, mac string, tftpPort int, stopWhen func(serial string) bool, fw firmware) boot {
	t.Helper()
	rom, memory := nicROM, "512"
	var firmwareArgs []string
	if fw == uefiFirmware {
		for _, f := range []string{ovmfCode, efiNICROM} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("%s not found: install Debian's ovmf and ipxe-qemu (scripts/install-deps.sh does)", f)
			}
		}
		rom, memory = efiNICROM, uefiMemory
		firmwareArgs = []string{"-bios", ovmfCode}
	}
	args := []string{
		"-accel", accel(),
		"-machine", "pc",
		"-m", memory,
		// SeaBIOS and iPXE write to the serial console only with
		// -nographic; the serial console (and the muxed monitor) is on
		// stdio, whose stdin is /dev/null.
		"-nographic",
		"-no-reboot",
		"-netdev", fmt.Sprintf("user,id=n0,bootfile=tftp://10.0.2.2:%d/boot.ipxe", tftpPort),
		"-device", fmt.Sprintf("%s,netdev=n0,mac=%s,romfile=%s", nicModel, mac, rom),
		"-boot", "order=n",
	}
	args = append(args, firmwareArgs...)
	var out testbin.Output
	cmd := exec.Command(qemuBinary, args...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", qemuBinary, err)
	}
	t.Logf("booting VM %s: %s %s", mac, qemuBinary, strings.Join(args, " "))
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
		}
		<-exited
	}
	// Whatever happens to the test, the VM does not outlive it.
	t.Cleanup(kill)

	b := boot{mac: mac}
	deadline := time.NewTimer(bootDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-exited:
			b.poweredOff = true
			break loop
		case <-deadline.C:
			b.timedOut = true
			kill()
			break loop
		case <-tick.C:
			if stopWhen != nil && stopWhen(cleanSerial(out.String())) {
				b.stopped = true
				kill()
				break loop
			}
		}
	}
	b.duration = time.Since(start)
	b.serial = cleanSerial(out.String())
	b.exitErr = waitErr
	t.Logf("VM %s ran %s (powered off: %v, stopped: %v, timed out: %v)", mac, b.duration.Round(time.Millisecond), b.poweredOff, b.stopped, b.timedOut)
	return b
}

var escapeSeq = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])`)

// cleanSerial removes terminal escape sequences and carriage returns.
func cleanSerial(s string) string {
	s = escapeSeq.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, "\r", "")
}

// lines returns the lines of the serial output that start with prefix,
// without it.
func (b boot) lines(prefix string) []string {
	var out []string
	for _, l := range strings.Split(b.serial, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			out = append(out, strings.TrimRight(l[i+len(prefix):], " "))
		}
	}
	return out
}

// report is what a failing boot test logs: the serial output and the
// server's log.
func report(t *testing.T, b boot, s *server) {
	t.Helper()
	if !t.Failed() {
		return
	}
	t.Logf("serial output of VM %s (%s, powered off: %v, stopped: %v, timed out: %v, exit: %v):\n%s", b.mac, b.duration.Round(time.Millisecond), b.poweredOff, b.stopped, b.timedOut, b.exitErr, b.serial)
	if s != nil {
		t.Logf("landscaper serve log:\n%s", s.log.String())
	}
}
