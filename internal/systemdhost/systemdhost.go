// Package systemdhost boots test targets on which systemd is PID 1: a
// Debian 12 root file system with systemd, OpenSSH's sshd and Nix
// (scripts/systemd-rootfs.sh, cached under /var/cache/landscaper-systemd)
// under `systemd-nspawn --boot`. Each container boots an overlay of the
// cached root (which it never writes), in a network namespace of its own
// that this machine reaches over a veth pair on a private /30 (10.213.x.y),
// so a test can cut the deployer's traffic off by taking the link down.
// It needs root, systemd-nspawn (systemd-container), iproute2, util-linux's
// nsenter and mount, and the packages scripts/systemd-rootfs.sh uses.
//
// The machine need not run systemd itself: containers are not registered
// with systemd-machined (--register=no) and stay in the test's own cgroup
// (--keep-unit). A container is stopped by killing its PID 1, which takes
// every process of its PID namespace with it; its overlay is unmounted and
// its directory removed when the test ends, failed or not.
package systemdhost

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// DefaultCacheDir is where scripts/systemd-rootfs.sh keeps the root
	// file system unless LANDSCAPER_SYSTEMD_CACHE names another directory.
	DefaultCacheDir = "/var/cache/landscaper-systemd"
	// rootfsTimeout bounds scripts/systemd-rootfs.sh: when nothing is
	// cached it debootstraps (through scripts/vm-assets.sh) and installs
	// packages, a few minutes; cached, it returns at once.
	rootfsTimeout = 20 * time.Minute
	// bootTimeout bounds a container's boot until its sshd answers.
	bootTimeout = 90 * time.Second
	// stopTimeout bounds the wait for systemd-nspawn to exit after the
	// container's PID 1 was killed.
	stopTimeout = 30 * time.Second
)

// Options describe a container to boot.
type Options struct {
	// HostKey is sshd's ed25519 host key in OpenSSH form; a new one is
	// generated when empty.
	HostKey string
	// AuthorizedKeys are authorized_keys lines by user: "root", and
	// "deploy" (a user with passwordless sudo).
	AuthorizedKeys map[string]string
}

// Container is a booted systemd container.
type Container struct {
	// Name is the machine name (and the host name inside).
	Name string
	// Address is the container's IPv4 address; sshd listens on Port 22.
	Address string
	Port    int
	// Dir holds the overlay's layers and its mount point, root.
	Dir string
	// hostIf is this machine's end of the veth pair.
	hostIf string
	nspawn *exec.Cmd
	waited chan struct{}
	leader int
	// console is what the container printed (systemd's boot messages).
	console *os.File
	// cgroups are the container's own cgroups, one per hierarchy.
	cgroups []string
}

var (
	rootfsOnce sync.Once
	rootfsDir  string
	rootfsLog  string
	rootfsErr  error
)

// RootFS runs scripts/systemd-rootfs.sh once per test process and returns
// the cached root file system.
func RootFS(t testing.TB) string {
	t.Helper()
	rootfsOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			rootfsErr = errors.New("systemdhost: cannot find its source file, so not the repository's scripts")
			return
		}
		repoRoot := filepath.Join(filepath.Dir(file), "..", "..")
		cache := os.Getenv("LANDSCAPER_SYSTEMD_CACHE")
		if cache == "" {
			cache = DefaultCacheDir
		}
		ctx, cancel := context.WithTimeout(context.Background(), rootfsTimeout)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "scripts", "systemd-rootfs.sh"), cache).CombinedOutput()
		rootfsLog = fmt.Sprintf("scripts/systemd-rootfs.sh %s (%s):\n%s", cache, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(string(out)))
		if err != nil {
			rootfsErr = fmt.Errorf("scripts/systemd-rootfs.sh %s: %w\n%s", cache, err, out)
			return
		}
		rootfsDir = filepath.Join(cache, "rootfs")
	})
	if rootfsErr != nil {
		t.Fatal(rootfsErr)
	}
	t.Log(rootfsLog)
	return rootfsDir
}

// RequireTools fails the test for each tool a container needs that is
// missing, naming its Debian package.
func RequireTools(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("systemd containers need root (mount, systemd-nspawn, ip): run the tests as root")
	}
	for _, tool := range []struct{ name, pkg string }{
		{"systemd-nspawn", "systemd-container"}, {"ip", "iproute2"}, {"nsenter", "util-linux"},
		{"mount", "mount"}, {"debootstrap", "debootstrap"}, {"ssh-keygen", "openssh-client"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Errorf("%s not found: apt-get install %s (scripts/install-deps.sh installs it)", tool.name, tool.pkg)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// subnets hands out the /30 networks of this process's containers.
var subnets = struct {
	sync.Mutex
	next int
}{}

// subnet returns the next free 10.213.x.y/30: this machine's end (.1 of
// the /30) and the container's (.2). Networks already on an interface of
// this machine (another test process) are skipped.
func subnet() (host, container string, err error) {
	subnets.Lock()
	defer subnets.Unlock()
	used, err := usedAddresses()
	if err != nil {
		return "", "", err
	}
	for tries := 0; tries < 16384; tries++ {
		n := subnets.next
		subnets.next = (subnets.next + 1) % 16384
		base := n * 4
		host = fmt.Sprintf("10.213.%d.%d", base/256, base%256+1)
		container = fmt.Sprintf("10.213.%d.%d", base/256, base%256+2)
		if !used[host] && !used[container] {
			return host, container, nil
		}
	}
	return "", "", errors.New("no free /30 left in 10.213.0.0/16")
}

func usedAddresses() (map[string]bool, error) {
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this machine's addresses: %w", err)
	}
	used := map[string]bool{}
	for _, a := range ifs {
		if ipn, ok := a.(*net.IPNet); ok {
			v4 := ipn.IP.To4()
			if v4 == nil {
				continue
			}
			// The whole /30 is taken when one of its addresses is.
			b := v4[3] &^ 3
			for i := byte(0); i < 4; i++ {
				used[net.IPv4(v4[0], v4[1], v4[2], b+i).String()] = true
			}
		}
	}
	return used, nil
}

// Start boots a container from the cached root file system rootfs and
// stops it when the test ends. It returns once sshd answers.
func Start(t testing.TB, rootfs string, opts Options) *Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	c, err := boot(ctx, t, rootfs, opts)
	if c != nil {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("stop container %s: %v", c.Name, err)
			}
		})
	}
	if err != nil {
		if c != nil {
			t.Logf("console of %s:\n%s", c.Name, c.Console())
		}
		t.Fatalf("boot a systemd container: %v", err)
	}
	return c
}

// boot makes the overlay, starts systemd-nspawn and waits for sshd. The
// container it returns (also with an error) must be closed.
func boot(ctx context.Context, t testing.TB, rootfs string, opts Options) (*Container, error) {
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, fmt.Errorf("pick a machine name: %w", err)
	}
	// "ve-" + the name must fit an interface name (15 characters).
	name := "lsc" + hex.EncodeToString(suffix)
	dir, err := os.MkdirTemp("", "systemdhost-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("make the container's directory: %w", err)
	}
	c := &Container{Name: name, Dir: dir, Port: 22, hostIf: "ve-" + name}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return c, err
		}
	}
	if out, err := exec.CommandContext(ctx, "mount", "-t", "overlay", "overlay", "-o",
		"lowerdir="+rootfs+",upperdir="+filepath.Join(dir, "upper")+",workdir="+filepath.Join(dir, "work"),
		c.Root()).CombinedOutput(); err != nil {
		return c, fmt.Errorf("mount the overlay of %s: %w: %s", rootfs, err, out)
	}
	if err := c.configure(ctx, opts); err != nil {
		return c, err
	}
	hostAddr, containerAddr, err := subnet()
	if err != nil {
		return c, err
	}
	c.Address = containerAddr
	if c.console, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
		return c, err
	}
	if c.cgroups, err = ownCgroups("landscaper-" + name); err != nil {
		return c, err
	}
	// sh puts itself into the container's own cgroups, then becomes
	// systemd-nspawn.
	args := []string{"-c", `n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ >"$1/cgroup.procs" || exit 125; shift; n=$((n - 1)); done
exec "$@"`, "sh", strconv.Itoa(len(c.cgroups))}
	args = append(args, c.cgroups...)
	args = append(args, "systemd-nspawn", "--boot", "--quiet",
		"--directory="+c.Root(), "--machine="+name,
		// This machine runs no systemd: nothing to register with, and
		// no scope to make: the container stays in its own cgroup.
		"--register=no", "--keep-unit",
		"--network-veth", "--console=pipe")
	c.nspawn = exec.Command("/bin/sh", args...)
	c.nspawn.Stdin = nil
	c.nspawn.Stdout = c.console
	c.nspawn.Stderr = c.console
	// nspawn's children die with it (they have PR_SET_PDEATHSIG), and it
	// dies with the test process.
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.nspawn.Start(); err != nil {
		c.nspawn = nil
		return c, fmt.Errorf("start systemd-nspawn: %w", err)
	}
	c.waited = make(chan struct{})
	go func() {
		_ = c.nspawn.Wait()
		close(c.waited)
	}()
	if c.leader, err = c.findLeader(ctx); err != nil {
		return c, err
	}
	if err := c.network(ctx, hostAddr, containerAddr); err != nil {
		return c, err
	}
	if err := c.waitSSH(ctx); err != nil {
		return c, err
	}
	if err := c.waitRunning(ctx); err != nil {
		return c, err
	}
	t.Logf("container %s booted: systemd is its PID 1 (pid %d here), sshd at %s:22", name, c.leader, containerAddr)
	return c, nil
}

// Root is the container's root directory (the overlay's mount point).
func (c *Container) Root() string { return filepath.Join(c.Dir, "root") }

// configure writes the container's own files into its overlay: host name,
// host key, authorized keys.
func (c *Container) configure(ctx context.Context, opts Options) error {
	root := c.Root()
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte(c.Name+"\n"), 0o644); err != nil {
		return err
	}
	key := filepath.Join(root, "etc", "ssh", "ssh_host_ed25519_key")
	if opts.HostKey != "" {
		if err := os.WriteFile(key, []byte(strings.TrimRight(opts.HostKey, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		pub, err := exec.CommandContext(ctx, "ssh-keygen", "-y", "-f", key).Output()
		if err != nil {
			return fmt.Errorf("derive the public host key: %w", err)
		}
		if err := os.WriteFile(key+".pub", pub, 0o644); err != nil {
			return err
		}
	} else if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	for user, keys := range opts.AuthorizedKeys {
		if err := os.WriteFile(filepath.Join(root, "etc", "ssh", "authorized_keys.d", user), []byte(keys), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// findLeader waits for the container's PID 1 (systemd), nspawn's child in
// a PID namespace of its own.
func (c *Container) findLeader(ctx context.Context) (int, error) {
	own, _ := os.Readlink("/proc/self/ns/pid")
	parent := c.nspawn.Process.Pid
	for {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || parentOf(pid) != parent {
				continue
			}
			ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			if ns != "" && ns != own {
				return pid, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("systemd-nspawn started no container: %w", ctx.Err())
		case <-c.waited:
			return 0, fmt.Errorf("systemd-nspawn exited: %v", c.nspawn.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// parentOf is a process's parent's pid, or 0.
func parentOf(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// network addresses both ends of the veth pair (the container's end from
// this machine, with this machine's ip, in the container's namespace).
func (c *Container) network(ctx context.Context, hostAddr, containerAddr string) error {
	// nspawn creates the pair once the container's PID 1 exists, and
	// moves one end into its namespace: wait for this machine's end.
	for {
		if _, err := net.InterfaceByName(c.hostIf); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("network of %s: systemd-nspawn made no interface %s: %w", c.Name, c.hostIf, ctx.Err())
		case <-c.waited:
			return fmt.Errorf("systemd-nspawn exited while booting: %v", c.nspawn.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
	steps := [][]string{
		{"ip", "addr", "add", hostAddr + "/30", "dev", c.hostIf},
		{"ip", "link", "set", c.hostIf, "up"},
		{"nsenter", "--target=" + strconv.Itoa(c.leader), "--net", "--", "ip", "addr", "add", containerAddr + "/30", "dev", "host0"},
		{"nsenter", "--target=" + strconv.Itoa(c.leader), "--net", "--", "ip", "link", "set", "host0", "up"},
		{"nsenter", "--target=" + strconv.Itoa(c.leader), "--net", "--", "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("network of %s: %s: %w: %s", c.Name, strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// waitSSH waits until sshd in the container sends its banner.
func (c *Container) waitSSH(ctx context.Context) error {
	addr := net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
	var lastErr error
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			banner, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if rerr == nil && strings.HasPrefix(banner, "SSH-") {
				return nil
			}
			err = fmt.Errorf("read the banner: %v", rerr)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd of %s did not answer at %s: %w (last: %v)", c.Name, addr, ctx.Err(), lastErr)
		case <-c.waited:
			return fmt.Errorf("systemd-nspawn exited while booting: %v", c.nspawn.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitRunning waits until systemd has finished booting and checks that
// nothing failed: a test target starts without failed units, which the
// provider's pre-flight would refuse.
func (c *Container) waitRunning(ctx context.Context) error {
	out, err := c.Exec(ctx, `systemctl is-system-running --wait
systemctl list-units --state=failed --no-legend --plain | while read -r unit rest; do
	echo "$unit:"
	journalctl --no-pager -o cat -n 10 -u "$unit"
done`)
	state, failed, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if err != nil || state != "running" {
		return fmt.Errorf("systemd in %s booted %q, not running (%v); failed units and their logs:\n%s", c.Name, state, err, failed)
	}
	return nil
}

// Exec runs a shell script inside the container (all its namespaces, as
// root, outside of any unit) and returns its combined output.
func (c *Container) Exec(ctx context.Context, script string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "--target="+strconv.Itoa(c.leader),
		"--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--", "/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in container %s: %w: %s", c.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// CutNetwork drops all traffic between this machine and the container:
// the container's end of the link goes down; nothing is reset, packets
// are just lost, as when a cable is pulled. (Not this machine's end: its
// route to the container would go with it, and packets to the container
// would take the default route instead.)
func (c *Container) CutNetwork(ctx context.Context) error {
	return c.link(ctx, "down")
}

// RestoreNetwork brings the link back.
func (c *Container) RestoreNetwork(ctx context.Context) error {
	return c.link(ctx, "up")
}

func (c *Container) link(ctx context.Context, state string) error {
	if out, err := exec.CommandContext(ctx, "nsenter", "--target="+strconv.Itoa(c.leader), "--net", "--",
		"ip", "link", "set", "host0", state).CombinedOutput(); err != nil {
		return fmt.Errorf("set host0 of %s %s: %w: %s", c.Name, state, err, out)
	}
	return nil
}

// HostPublicKey is the ed25519 host key sshd has on disk now.
func (c *Container) HostPublicKey(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Root(), "etc", "ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		t.Fatalf("read the host key of %s: %v", c.Name, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("host key of %s: %q", c.Name, b)
	}
	return f[0] + " " + f[1]
}

// Console is what the container printed so far.
func (c *Container) Console() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "console.log"))
	return string(b)
}

// Close stops the container (its PID 1 is killed, with its whole PID
// namespace), waits for systemd-nspawn, unmounts the overlay and removes
// the directory.
func (c *Container) Close() error {
	var errs []error
	if c.nspawn != nil {
		if c.leader > 0 {
			_ = syscall.Kill(c.leader, syscall.SIGKILL)
		}
		select {
		case <-c.waited:
		case <-time.After(stopTimeout):
			_ = c.nspawn.Process.Kill()
			<-c.waited
			errs = append(errs, fmt.Errorf("systemd-nspawn did not exit within %s of its container's end; killed", stopTimeout))
		}
		c.nspawn = nil
	}
	if c.console != nil {
		c.console.Close()
	}
	if len(c.cgroups) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		if err := removeCgroups(ctx, c.cgroups); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	// nspawn removes the veth pair with the namespace; make sure.
	if _, err := net.InterfaceByName(c.hostIf); err == nil {
		_ = exec.Command("ip", "link", "del", c.hostIf).Run()
	}
	// nspawn leaves these on a /run that is not a tmpfs.
	for _, d := range []string{"/run/systemd/nspawn/propagate/" + c.Name, "/run/systemd/nspawn/unix-export/" + c.Name} {
		_ = os.RemoveAll(d)
	}
	if mounted(c.Root()) {
		if out, err := exec.Command("umount", c.Root()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w: %s", c.Root(), err, out))
			_ = exec.Command("umount", "--lazy", c.Root()).Run()
		}
	}
	if !mounted(c.Root()) {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mounted reports whether something is mounted at dir.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}
