// Package testhost starts stand-in NixOS hosts for tests: OpenSSH's sshd in
// its own mount namespace with its own /nix (store, database, profiles),
// /run and /etc/ssh, listening on its own loopback port, on 127.0.0.1 or
// ::1. `nix copy --to ssh-ng://` reaches the host's own store through the
// real nix-daemon (`nix-daemon --stdio`, started by sshd for each copy).
// Besides root, a host may have login users of its own, with passwordless
// sudo or without. It needs root, unshare and mount (util-linux), sshd
// (openssh-server) and nix, and sudo for a user with sudo.
//
// NetBoot fetches a machine's entry from `landscaper serve` as a machine
// booting from the network does (curl, cpio), so that a host can start
// with the host key and authorized_keys its entry carries. Launch starts a
// host outside of tests, for the simulated server of `make demo`.
package testhost

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options describe a host to start.
type Options struct {
	// HostKey is the host's ed25519 private key in OpenSSH form; a new one
	// is generated when empty.
	HostKey string
	// AuthorizedKeys are the authorized_keys lines for root.
	AuthorizedKeys string
	// Port is the loopback port sshd listens on; 0 picks a free one when
	// the host starts. A deployment that must name the port before the
	// host exists picks one with FreePort and passes it here.
	Port int
	// Dir is the directory for the host's /nix, /run and /etc/ssh; it is
	// created if missing. When empty, a new temporary directory is used.
	// Either way it is removed when the host is closed.
	Dir string
	// Address is the loopback address sshd listens on: "127.0.0.1" (the
	// default, when empty) or "::1". On a machine without the IPv6
	// loopback address ::1 a host on ::1 does not start: Start fails the
	// test saying ::1 is missing.
	Address string
	// Users are login users other than root. The host's own /etc/passwd
	// and /etc/group (this machine's, with these users added) and
	// /etc/sudoers (only root, and the users with Sudo) are bind-mounted
	// in its namespace; nothing changes outside of it.
	Users []User
}

// User is a login user other than root on a stand-in host, with the
// shell /bin/sh and the home /run/home/NAME.
type User struct {
	// Name is the login name: lower-case letters, digits, _ and -.
	Name string
	// Sudo lets the user run any command as root with "sudo -n", without
	// a password (NOPASSWD: ALL). A user without it is not in sudoers. A
	// host with a Sudo user needs sudo (Debian's sudo package).
	Sudo bool
	// AuthorizedKeys are the user's authorized_keys lines.
	AuthorizedKeys string
}

// Host is a running stand-in host.
type Host struct {
	// Dir holds the host's /nix, /run and /etc/ssh (as nix, run, etc-ssh).
	Dir     string
	Address string
	Port    int
	holder  *exec.Cmd
	// t is the test of a host from Start; nil for one from Launch.
	t testing.TB
}

const sshdConfig = `Port %d
ListenAddress %s
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys/%%u
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100
LogLevel VERBOSE
`

// FreePort returns a loopback TCP port nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return port
}

func freePort() (int, error) { return freePortOn("127.0.0.1") }

// freePortOn returns a TCP port nothing listens on now at address. On a
// machine without the address (no IPv6 loopback), the error says so.
func freePortOn(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		if ip, perr := netip.ParseAddr(address); perr == nil && ip.Is6() {
			return 0, fmt.Errorf("this machine has no IPv6 loopback address %s to start a stand-in host on (ip -6 addr show lo lists none: IPv6 is off, e.g. net.ipv6.conf.lo.disable_ipv6=1): %w", address, err)
		}
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// loopbackAddress is the address a host listens on: opts.Address, or
// 127.0.0.1; only loopback addresses are allowed.
func loopbackAddress(a string) (string, error) {
	if a == "" {
		return "127.0.0.1", nil
	}
	ip, err := netip.ParseAddr(a)
	if err != nil || !ip.IsLoopback() || ip.Zone() != "" {
		return "", fmt.Errorf("stand-in host address %q: want a loopback IP address such as 127.0.0.1 or ::1", a)
	}
	return ip.String(), nil
}

// Start starts a host and stops it when the test ends.
func Start(t testing.TB, opts Options) *Host {
	t.Helper()
	h, err := Launch(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.t = t
	t.Cleanup(h.Close)
	return h
}

// Launch starts a host outside of a test (the demo's simulated server);
// Close stops it and removes its directory. Start is Launch for tests.
func Launch(opts Options) (_ *Host, err error) {
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("/work", "testhost-"); err != nil {
			dir, err = os.MkdirTemp("", "testhost-")
		}
		if err != nil {
			return nil, fmt.Errorf("make the host's directory: %w", err)
		}
	}
	h := &Host{Dir: dir, Port: opts.Port}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if h.Address, err = loopbackAddress(opts.Address); err != nil {
		return nil, err
	}
	// Also when the port is given: a missing ::1 is said here, not as a
	// host whose sshd never starts.
	port, err := freePortOn(h.Address)
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	if h.Port == 0 {
		h.Port = port
	}
	for _, d := range []string{"nix", "run/sshd", "etc-ssh/authorized_keys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	userMounts, err := setUpUsers(dir, opts.Users)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "etc-ssh", "ssh_host_ed25519_key")
	if opts.HostKey != "" {
		if err := os.WriteFile(keyFile, []byte(strings.TrimRight(opts.HostKey, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		pub, err := exec.Command("ssh-keygen", "-y", "-f", keyFile).Output()
		if err != nil {
			return nil, fmt.Errorf("derive public host key: %w", err)
		}
		if err := os.WriteFile(keyFile+".pub", pub, 0o644); err != nil {
			return nil, err
		}
	} else if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	for _, f := range []struct {
		rel, content string
	}{
		{"etc-ssh/sshd_config", fmt.Sprintf(sshdConfig, h.Port, h.Address)},
		{"etc-ssh/authorized_keys/root", opts.AuthorizedKeys},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.rel), []byte(f.content), 0o644); err != nil {
			return nil, err
		}
	}
	// root gets an empty home of its own: sshd runs each command through
	// root's login shell, which would otherwise read this machine's
	// /root/.bashrc (on a development machine that may start tools, such
	// as pyenv's init with about 100 processes per command, which a NixOS
	// server does not).
	script := fmt.Sprintf(`set -e
mount --bind %[1]s/nix /nix
mount --bind %[1]s/run /run
mount --bind %[1]s/etc-ssh /etc/ssh
mount -t tmpfs -o mode=0700 testhost-root /root
%[2]s/usr/sbin/sshd -f /etc/ssh/sshd_config -E /run/sshd.log
exec sleep 2147483647`, dir, userMounts)
	h.holder = exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script)
	var stderr bytes.Buffer
	h.holder.Stderr = &stderr
	if err := h.holder.Start(); err != nil {
		h.holder = nil
		return nil, fmt.Errorf("start host: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Address, strconv.Itoa(h.Port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "run", "sshd.log"))
			return nil, fmt.Errorf("host's sshd did not start: %v\n%s\n%s", err, stderr.String(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h, nil
}

// Close stops the host and removes its directory.
func (h *Host) Close() {
	h.Stop()
	os.RemoveAll(h.Dir)
}

// fatalf fails the test of a host from Start, and panics for one from
// Launch.
func (h *Host) fatalf(format string, args ...any) {
	if h.t != nil {
		h.t.Helper()
		h.t.Fatalf(format, args...)
	}
	panic(fmt.Sprintf(format, args...))
}

// Namespace is the mount namespace of the host's processes
// ("mnt:[4026532...]"), or "" once it is stopped.
func (h *Host) Namespace() string {
	if h.holder == nil || h.holder.Process == nil {
		return ""
	}
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.holder.Process.Pid))
	return ns
}

// Processes lists the pids of every process in the host's namespace.
func (h *Host) Processes() []int { return InNamespace(h.Namespace()) }

// InNamespace lists the pids of the processes in mount namespace ns.
func InNamespace(ns string) []int {
	if ns == "" {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Stop kills every process of the host.
func (h *Host) Stop() {
	if h.holder == nil || h.holder.Process == nil {
		return
	}
	for _, pid := range h.Processes() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = h.holder.Process.Kill()
	_ = h.holder.Wait()
	h.holder = nil
}

// Exec runs a shell script inside the host's namespace and returns its
// combined output.
func (h *Host) Exec(ctx context.Context, script string) (string, error) {
	out, err := h.Command(ctx, "sh", "-c", script).CombinedOutput()
	return string(out), err
}

// Command is a command run inside the host's namespace, as exec.Command
// makes it (stdin, stdout and stderr are the caller's to set).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--mount=/proc/" + strconv.Itoa(h.holder.Process.Pid) + "/ns/mnt", "--", name}, args...)...)
}

// HostPublicKey is the public host key sshd has on disk now.
func (h *Host) HostPublicKey() string {
	b, err := os.ReadFile(filepath.Join(h.Dir, "etc-ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		h.fatalf("read host key: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// AuthorizeKey adds an authorized_keys line for root.
func (h *Host) AuthorizeKey(line string) {
	f, err := os.OpenFile(filepath.Join(h.Dir, "etc-ssh", "authorized_keys", "root"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		h.fatalf("%v", err)
	}
	defer f.Close()
	fmt.Fprintln(f, strings.TrimSpace(line))
}

// link reads a symlink inside the host, resolving it relative to its
// directory like the host would, one level at a time, until a store path.
func (h *Host) link(p string) string {
	for i := 0; i < 8; i++ {
		target, err := os.Readlink(h.hostPath(p))
		if err != nil {
			return ""
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		if strings.HasPrefix(target, "/nix/store/") {
			return target
		}
		p = target
	}
	return ""
}

// hostPath maps a path inside the host to where it is on this machine.
func (h *Host) hostPath(p string) string {
	switch {
	case strings.HasPrefix(p, "/nix/"):
		return filepath.Join(h.Dir, "nix", strings.TrimPrefix(p, "/nix/"))
	case strings.HasPrefix(p, "/run/"):
		return filepath.Join(h.Dir, "run", strings.TrimPrefix(p, "/run/"))
	case strings.HasPrefix(p, "/etc/ssh/"):
		return filepath.Join(h.Dir, "etc-ssh", strings.TrimPrefix(p, "/etc/ssh/"))
	}
	return p
}

// CurrentSystem is where /run/current-system points ("" when nowhere).
func (h *Host) CurrentSystem() string { return h.link("/run/current-system") }

// ProfileSystem is the system profile's current generation's store path.
func (h *Host) ProfileSystem() string { return h.link("/nix/var/nix/profiles/system") }

// BootDefault is the system a reboot would start: what the last
// `switch-to-configuration boot|switch` of a stand-in system recorded.
func (h *Host) BootDefault() string {
	b, _ := os.ReadFile(h.hostPath("/nix/var/standin/boot-default"))
	return strings.TrimSpace(string(b))
}

// Activations are the stand-in systems' records of their runs, one
// "<store path> <action>" line each, oldest first.
func (h *Host) Activations() []string {
	b, _ := os.ReadFile(h.hostPath("/nix/var/standin/log"))
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// HasPath reports whether the host's store holds the path.
func (h *Host) HasPath(storePath string) bool {
	_, err := os.Lstat(h.hostPath(storePath))
	return err == nil
}

// SSHDRunning reports whether the host's listening sshd is alive.
func (h *Host) SSHDRunning() bool {
	b, err := os.ReadFile(h.hostPath("/run/sshd.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// SSHDLog is sshd's log.
func (h *Host) SSHDLog() string {
	b, _ := os.ReadFile(h.hostPath("/run/sshd.log"))
	return string(b)
}
