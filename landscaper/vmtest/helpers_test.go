package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/cpio"
)

const (
	// defaultCacheDir is where scripts/vm-assets.sh keeps its
	// debootstrapped root file system, the kernels and what it makes from
	// them, unless LANDSCAPER_VM_CACHE names another directory.
	defaultCacheDir = "/var/cache/landscaper-vm"
	// assetsTimeout bounds scripts/vm-assets.sh: a cold run debootstraps
	// and downloads two kernels (about 3 minutes); a cached one returns at
	// once.
	assetsTimeout = 20 * time.Minute
	// commandTimeout bounds one command: nix-build, nix copy, one ssh.
	commandTimeout = 5 * time.Minute
	// sshDeadline bounds the wait for a VM's sshd after it was started or
	// rebooted. Under TCG on 2 CPUs the installer answers in about a
	// minute; KVM is much faster.
	sshDeadline = 8 * time.Minute
	// serverStartTimeout and serverStopTimeout bound landscaper serve.
	serverStartTimeout = 30 * time.Second
	serverStopTimeout  = 20 * time.Second

	qemuBinary = "qemu-system-x86_64"
	// The e1000 card's iPXE ROM from Debian's ipxe-qemu, named explicitly
	// as landscaper/netboottest does (the virtio ROMs do not match the
	// transitional virtio-net device of the pc machine).
	nicROM = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
	// ipxeDir is what landscaper serve --ipxe-dir serves, from Debian's ipxe.
	ipxeDir = "/usr/lib/ipxe"
	// memory is the VMs' RAM: the installer runs from a 90 MB initramfs
	// and keeps what is copied into its own store in RAM.
	memory = "2048"
	// diskSize is the size of the VMs' empty qcow2 disk.
	diskSize = "8G"

	// Where the installer's sshd reads its host key and root's authorized
	// keys: the paths of examples/install/params.nix (hostKeyPath,
	// authorizedKeysPath), which the boot entry's extra archive fills.
	hostKeyPath        = "/etc/ssh/ssh_host_ed25519_key"
	authorizedKeysPath = "/etc/ssh/authorized_keys.d/root"
	// installerMarker is what the installer's /init writes, and what the
	// disko stand-in (and nixos.install) insist on before touching a disk.
	installerMarker = "/etc/landscaper-installer"
)

// requireTools fails the test for each tool the VM tests need that is
// missing, naming the Debian package scripts/install-deps.sh installs.
// debootstrap is only needed while the cache is cold; vm-assets.sh checks it.
func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the VM tests boot and install real machines (minutes); skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the VM tests debootstrap (scripts/vm-assets.sh) and build with nix as root: run them as root")
	}
	var missing []string
	for _, tool := range []struct{ name, pkg string }{
		{qemuBinary, "qemu-system-x86"}, {"qemu-img", "qemu-utils"},
		{"nix-build", "nix-bin"}, {"nix", "nix-bin"},
		{"ssh", "openssh-client"}, {"ssh-keygen", "openssh-client"}, {"ssh-keyscan", "openssh-client"},
		{"patchelf", "patchelf"}, {"cpio", "cpio"}, {"zstd", "zstd"}, {"gzip", "gzip"},
		{"modprobe", "kmod"}, {"depmod", "kmod"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s not found: install Debian's %s", tool.name, tool.pkg))
		}
	}
	for _, f := range []struct{ path, pkg string }{
		{nicROM, "ipxe-qemu"}, {filepath.Join(ipxeDir, "undionly.kpxe"), "ipxe"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s not found: install Debian's %s", f.path, f.pkg))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the VM tests need tools that are missing (scripts/install-deps.sh installs them):\n  %s", strings.Join(missing, "\n  "))
	}
}

// accel returns QEMU's accelerator arguments and why they were chosen:
// LANDSCAPER_VM_ACCEL (kvm or tcg) decides; otherwise KVM when /dev/kvm
// opens and is a hardware KVM. On a nested host whose /dev/kvm is PVM
// (kvm_pvm: it runs only guest kernels built for PVM), an ordinary
// kernel hangs right after the boot loader, so TCG is used there.
func accel() ([]string, string) {
	kvm := []string{"-accel", "kvm", "-cpu", "host"}
	// MTTCG on every host CPU; "max" gives the guest SSE 4.2 and friends.
	tcg := []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	switch os.Getenv("LANDSCAPER_VM_ACCEL") {
	case "kvm":
		return kvm, "KVM (LANDSCAPER_VM_ACCEL=kvm)"
	case "tcg":
		return tcg, "TCG (LANDSCAPER_VM_ACCEL=tcg)"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return tcg, fmt.Sprintf("TCG (/dev/kvm: %v)", err)
	}
	f.Close()
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return tcg, "TCG (/dev/kvm is kvm_pvm, which runs only PVM guest kernels; LANDSCAPER_VM_ACCEL=kvm forces it)"
	}
	return kvm, "KVM (/dev/kvm)"
}

// phases times the named phases of a test in its log.
type phases struct {
	t     *testing.T
	start time.Time
	name  string
	began time.Time
	done  []string
}

func newPhases(t *testing.T) *phases {
	p := &phases{t: t, start: time.Now()}
	t.Cleanup(func() {
		p.end()
		t.Logf("phases:\n  %s\n  total %s", strings.Join(p.done, "\n  "), time.Since(p.start).Round(100*time.Millisecond))
	})
	return p
}

// begin ends the current phase and starts the next.
func (p *phases) begin(name string) {
	p.t.Helper()
	p.end()
	p.name, p.began = name, time.Now()
	p.t.Logf("== phase %q", name)
}

func (p *phases) end() {
	if p.name == "" {
		return
	}
	d := time.Since(p.began).Round(100 * time.Millisecond)
	p.done = append(p.done, fmt.Sprintf("%-40s %s", p.name, d))
	p.t.Logf("== phase %q took %s", p.name, d)
	p.name = ""
}

// assets are what scripts/vm-assets.sh made.
type assets struct {
	dir string
	// kernel and initrd are the installer's.
	kernel, initrd string
	// parts is what testdata/*.nix build from.
	parts string
	// kernels are the versions in parts/kernels/list, the default first.
	kernels []string
}

var (
	assetsOnce sync.Once
	assetsVal  assets
	assetsErr  error
)

// vmAssets runs scripts/vm-assets.sh on the cache directory, once per test
// process.
func vmAssets(t *testing.T) assets {
	t.Helper()
	assetsOnce.Do(func() {
		dir := os.Getenv("LANDSCAPER_VM_CACHE")
		if dir == "" {
			dir = defaultCacheDir
		}
		script := filepath.Join(testbin.Root(t), "scripts", "vm-assets.sh")
		ctx, cancel := context.WithTimeout(context.Background(), assetsTimeout)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "bash", script, dir).CombinedOutput()
		t.Logf("scripts/vm-assets.sh %s (%s):\n%s", dir, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(string(out)))
		if err != nil {
			assetsErr = fmt.Errorf("scripts/vm-assets.sh %s: %v", dir, err)
			return
		}
		a := assets{
			dir:    dir,
			kernel: filepath.Join(dir, "installer", "bzImage"),
			initrd: filepath.Join(dir, "installer", "initrd"),
			parts:  filepath.Join(dir, "parts"),
		}
		list, err := os.ReadFile(filepath.Join(a.parts, "kernels", "list"))
		if err != nil {
			assetsErr = err
			return
		}
		a.kernels = strings.Fields(string(list))
		for _, f := range []string{a.kernel, a.initrd} {
			if _, err := os.Stat(f); err != nil {
				assetsErr = fmt.Errorf("scripts/vm-assets.sh did not make %s: %v", f, err)
				return
			}
		}
		assetsVal = a
	})
	if assetsErr != nil {
		t.Fatal(assetsErr)
	}
	return assetsVal
}

// run runs a command with a deadline and returns its stdout; it fails the
// test, with stdout and stderr, unless the command exits 0.
func run(t *testing.T, env []string, stdin []byte, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runErr is run without failing the test.
func runErr(env []string, stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return stdout.String(), fmt.Errorf("%s %s: timed out after %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), commandTimeout, stdout.String(), stderr.String())
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// standins are the store paths testdata/default.nix builds.
type standins struct {
	systemA, systemA2, systemB, disko string
}

// buildStandins builds the stand-in systems, with root's authorized key,
// and the disko stand-in.
func buildStandins(t *testing.T, a assets, authorizedKey string) standins {
	t.Helper()
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, testbin.Env(), nil, "nix-build", "--no-out-link", testdata,
		"--argstr", "parts", a.parts,
		"--argstr", "authorizedKey", authorizedKey,
		"-A", "systemA", "-A", "systemA2", "-A", "systemB", "-A", "disko")
	paths := strings.Fields(out)
	if len(paths) != 4 {
		t.Fatalf("nix-build printed %d paths, want 4:\n%s", len(paths), out)
	}
	return standins{systemA: paths[0], systemA2: paths[1], systemB: paths[2], disko: paths[3]}
}

// key is an ed25519 key pair in files.
type key struct {
	private string // path of the private key
	public  string // "ssh-ed25519 AAAA..." (no comment)
}

func newKey(t *testing.T, dir, name string) key {
	t.Helper()
	path := filepath.Join(dir, name)
	run(t, nil, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path)
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	return key{private: path, public: f[0] + " " + f[1]}
}

func (k key) privateBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(k.private)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server is a running `landscaper serve`.
type server struct {
	cmd      *exec.Cmd
	log      *testbin.Output
	exited   chan struct{}
	waitErr  error
	tftpPort int
	httpPort int
}

// startServer starts landscaper serve on free loopback ports with the boot
// directory bootDir and Debian's iPXE binaries. Its scripts send machines
// to http://10.0.2.2:<http port>/ for kernels and initrds (QEMU's user
// networking forwards 10.0.2.2 to the host's 127.0.0.1): the installer's
// 30 MB initrd takes seconds over HTTP. It is stopped (SIGTERM) when the
// test ends.
func startServer(t *testing.T, bootDir string) *server {
	t.Helper()
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	var lastErr string
	// A free port can be taken between choosing it and listening on it.
	for attempt := 0; attempt < 3; attempt++ {
		s := &server{log: &testbin.Output{}, exited: make(chan struct{}), tftpPort: freePort(t, "udp"), httpPort: freePort(t, "tcp")}
		args := []string{"serve",
			"--boot-dir", bootDir,
			"--tftp-listen", fmt.Sprintf("127.0.0.1:%d", s.tftpPort),
			"--http-listen", fmt.Sprintf("127.0.0.1:%d", s.httpPort),
			"--http-url", fmt.Sprintf("http://10.0.2.2:%d/", s.httpPort),
			"--ipxe-dir", ipxeDir,
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
				_ = s.cmd.Process.Kill()
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

// stop sends SIGTERM and waits, killing a server that does not exit in time.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("landscaper serve did not exit within %s of SIGTERM", serverStopTimeout)
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// putEntry writes the boot entry of mac into bootDir, as the pxe-nbp
// provider does: kernel, initrds, command line, and files in an extra
// archive for that machine alone.
func putEntry(t *testing.T, bootDir, mac, kernel string, initrds []string, cmdline string, files []cpio.File) string {
	t.Helper()
	extra, err := cpio.Build(files)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bootentry.Store{Dir: bootDir}.Put(bootentry.Entry{MAC: mac, Kernel: kernel, Initrds: initrds, Cmdline: cmdline}, extra)
	if err != nil {
		t.Fatalf("write the boot entry of %s: %v", mac, err)
	}
	return v.ID
}

// deleteEntry removes the boot entry of mac: the boot server then tells
// the machine's iPXE to exit, and the firmware goes on to its disk.
func deleteEntry(t *testing.T, bootDir, mac string) {
	t.Helper()
	if err := (bootentry.Store{Dir: bootDir}).Delete(mac); err != nil {
		t.Fatalf("delete the boot entry of %s: %v", mac, err)
	}
}

// vmConfig is how a VM boots.
type vmConfig struct {
	name string
	mac  string
	disk string
	// bootfile is the URL or TFTP path QEMU's DHCP server gives iPXE.
	bootfile string
	// tftpDir, when set, is served by QEMU's own TFTP server (for
	// hand-written iPXE scripts).
	tftpDir string
	sshPort int
}

// vm is a running QEMU machine: network boot first (the e1000 card's iPXE
// ROM), then its virtio disk; QEMU's user networking with sshPort on
// 127.0.0.1 forwarded to the guest's port 22; the serial console in a log
// file, each chunk timed. Reboots stay in the same QEMU process.
type vm struct {
	cfg     vmConfig
	cmd     *exec.Cmd
	log     *serialLog
	started time.Time
	exited  chan struct{}
	waitErr error
}

// serialLog is a VM's serial console: written to a file as it comes, and
// kept with the time each chunk arrived, so that the time of a line can be
// told afterwards.
type serialLog struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	b     bytes.Buffer
	marks []serialMark
}

type serialMark struct {
	at  time.Time
	end int // the log's length after the chunk
}

func (s *serialLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.f.Write(p)
	s.b.Write(p)
	s.marks = append(s.marks, serialMark{at: time.Now(), end: s.b.Len()})
	return len(p), nil
}

// raw is what the VM printed so far, as it printed it.
func (s *serialLog) raw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// timeOf is when the byte at offset off arrived.
func (s *serialLog) timeOf(off int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.marks), func(i int) bool { return s.marks[i].end > off })
	if i == len(s.marks) {
		return time.Now()
	}
	return s.marks[i].at
}

func startVM(t *testing.T, cfg vmConfig) *vm {
	t.Helper()
	accelArgs, why := accel()
	netdev := fmt.Sprintf("user,id=n0,bootfile=%s,hostfwd=tcp:127.0.0.1:%d-:22", cfg.bootfile, cfg.sshPort)
	if cfg.tftpDir != "" {
		netdev += ",tftp=" + cfg.tftpDir
	}
	args := append(accelArgs,
		"-machine", "pc",
		"-smp", "2",
		"-m", memory,
		// SeaBIOS and iPXE write to the serial console only with
		// -nographic; the console (and the muxed monitor) is on stdout,
		// which goes to the log; stdin is /dev/null.
		"-nographic",
		// Like a server that keeps trying: with nothing to boot (no
		// entry yet, an empty disk), start again after 5 s.
		"-boot", "reboot-timeout=5000",
		"-netdev", netdev,
		"-device", fmt.Sprintf("e1000,netdev=n0,mac=%s,romfile=%s,bootindex=1", cfg.mac, nicROM),
		"-drive", fmt.Sprintf("file=%s,if=none,id=disk0,format=qcow2", cfg.disk),
		"-device", "virtio-blk-pci,drive=disk0,bootindex=2",
	)
	log := &serialLog{path: filepath.Join(t.TempDir(), cfg.name+"-serial.log")}
	f, err := os.Create(log.path)
	if err != nil {
		t.Fatal(err)
	}
	log.f = f
	v := &vm{cfg: cfg, log: log, exited: make(chan struct{})}
	v.cmd = exec.Command(qemuBinary, args...)
	v.cmd.Stdout, v.cmd.Stderr = log, log
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", qemuBinary, err)
	}
	go func() { v.waitErr = v.cmd.Wait(); close(v.exited) }()
	t.Logf("VM %s (%s): %s %s", cfg.name, why, qemuBinary, strings.Join(args, " "))
	t.Cleanup(func() {
		v.kill()
		f.Close()
		if t.Failed() {
			t.Logf("serial console of VM %s (last 150 lines; %s):\n%s", cfg.name, log.path, lastLines(v.serial(), 150))
		}
	})
	return v
}

// kill stops QEMU (SIGKILL) and waits for it.
func (v *vm) kill() {
	select {
	case <-v.exited:
	default:
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
}

// offset is the length of the serial console so far, for waitForSerial
// and timeline.
func (v *vm) offset() int { return len(v.log.raw()) }

// timeline logs when each marker first appeared on the serial console
// after offset from (each after the one before), relative to since.
func (v *vm) timeline(t *testing.T, what string, from int, since time.Time, markers ...string) {
	t.Helper()
	raw := v.log.raw()
	var lines []string
	pos := from
	for _, m := range markers {
		i := -1
		if pos <= len(raw) {
			i = strings.Index(raw[pos:], m)
		}
		if i < 0 {
			lines = append(lines, fmt.Sprintf("%8s  %s", "-", m))
			continue
		}
		pos += i
		lines = append(lines, fmt.Sprintf("%7.1fs  %s", v.log.timeOf(pos).Sub(since).Seconds(), m))
	}
	t.Logf("%s (serial console, from %s):\n  %s", what, since.Format("15:04:05.0"), strings.Join(lines, "\n  "))
}

// waitExit waits for QEMU to exit by itself (the guest powered off).
func (v *vm) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-v.exited:
	case <-time.After(timeout):
		t.Fatalf("VM %s did not power off within %s", v.cfg.name, timeout)
	}
}

var escapeSeq = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])`)

// serial is what the VM printed so far, without terminal escape sequences
// and carriage returns.
func (v *vm) serial() string {
	return strings.ReplaceAll(escapeSeq.ReplaceAllString(v.log.raw(), ""), "\r", "")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// presentedKey is the ed25519 host key the VM's sshd presents now
// ("ssh-ed25519 AAAA..."), or "" when none answers.
func (v *vm) presentedKey() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// -T 5: a guest without an address yet leaves QEMU's forwarded
	// connection hanging until the timeout, so a shorter one polls finer.
	out, _ := exec.CommandContext(ctx, "ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", fmt.Sprint(v.cfg.sshPort), "127.0.0.1").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && !strings.HasPrefix(l, "#") {
			return f[1] + " " + f[2]
		}
	}
	return ""
}

// waitForHostKey waits until the VM's sshd presents want and returns how
// long that took from since. Other keys (the installer's, while a reboot
// has not happened yet) are logged and waited out; QEMU exiting, or the
// deadline, fails the test.
func (v *vm) waitForHostKey(t *testing.T, want string, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(sshDeadline)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-v.exited:
			t.Fatalf("QEMU exited (%v) while waiting for sshd to present %s", v.waitErr, want)
		default:
		}
		got := v.presentedKey()
		if got == want {
			return time.Since(since)
		}
		if got != "" && got != last {
			t.Logf("VM %s presents %s, waiting for %s", v.cfg.name, got, want)
		}
		last = got
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("VM %s did not present host key %s within %s (last seen: %q)", v.cfg.name, want, sshDeadline, last)
	return 0
}

// sshTarget is root on a VM's sshd, with the host key pinned.
type sshTarget struct {
	port       int
	login      key
	knownHosts string // file with the one pinned key
}

// newTarget pins hostKey ("ssh-ed25519 AAAA...") for 127.0.0.1:port.
func newTarget(t *testing.T, dir string, port int, login key, hostKey string) sshTarget {
	t.Helper()
	kh, err := os.CreateTemp(dir, "known_hosts-")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(kh, "[127.0.0.1]:%d %s\n", port, hostKey)
	kh.Close()
	return sshTarget{port: port, login: login, knownHosts: kh.Name()}
}

// opts are OpenSSH's options for the target, also NIX_SSHOPTS (split on
// whitespace: the paths hold none).
func (s sshTarget) opts() []string {
	return []string{"-p", fmt.Sprint(s.port), "-i", s.login.private,
		"-o", "UserKnownHostsFile=" + s.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-o", "LogLevel=ERROR"}
}

// run runs a shell command as root on the target and returns its stdout.
func (s sshTarget) run(t *testing.T, command string) string {
	t.Helper()
	return run(t, nil, nil, "ssh", append(s.opts(), "root@127.0.0.1", command)...)
}

// runErr is run without failing the test.
func (s sshTarget) runErr(command string) (string, error) {
	return runErr(nil, nil, "ssh", append(s.opts(), "root@127.0.0.1", command)...)
}

// runStdin runs a command with stdin.
func (s sshTarget) runStdin(t *testing.T, stdin []byte, command string) string {
	t.Helper()
	return run(t, nil, stdin, "ssh", append(s.opts(), "root@127.0.0.1", command)...)
}

// nixCopy copies path's closure to the target's store (remoteStore "" is
// the default one; "local?root=/mnt" the one under /mnt) over ssh-ng, which
// runs `nix-daemon --stdio` on the target.
func (s sshTarget) nixCopy(t *testing.T, path, remoteStore string) {
	t.Helper()
	to := "ssh-ng://root@127.0.0.1"
	if remoteStore != "" {
		to += "?remote-store=" + remoteStore
	}
	env := append(testbin.Env(), "NIX_SSHOPTS="+strings.Join(s.opts(), " "))
	run(t, env, nil, "nix", "--extra-experimental-features", "nix-command", "copy", "--no-check-sigs", "--to", to, path)
}

// reboot asks the target to reboot, without waiting for it.
func (s sshTarget) reboot(t *testing.T) {
	t.Helper()
	s.run(t, "sync; (sleep 1; reboot) </dev/null >/dev/null 2>&1 &")
}

// storePathOf resolves a symlink in the store (toplevel/kernel) to the
// store path it points into: "/nix/store/...-linux-6.1.0-57-amd64".
func storePathOf(t *testing.T, link string) string {
	t.Helper()
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(strings.TrimPrefix(target, "/nix/store/"), "/", 2)
	return "/nix/store/" + parts[0]
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
