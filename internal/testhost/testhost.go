// Package testhost starts stand-in NixOS hosts for tests: OpenSSH's sshd in
// its own mount namespace with its own /nix (store, database, profiles),
// /run and /etc/ssh, listening on its own loopback port. `nix copy --to
// ssh-ng://` reaches the host's own store through the real nix-daemon
// (`nix-daemon --stdio`, started by sshd for each copy). It needs root,
// unshare and mount (util-linux), sshd (openssh-server) and nix.
package testhost

import (
	"bytes"
	"context"
	"fmt"
	"net"
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
}

// Host is a running stand-in host.
type Host struct {
	// Dir holds the host's /nix, /run and /etc/ssh (as nix, run, etc-ssh).
	Dir     string
	Address string
	Port    int
	holder  *exec.Cmd
	t       testing.TB
}

const sshdConfig = `Port %d
ListenAddress 127.0.0.1
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts a host and stops it when the test ends.
func Start(t testing.TB, opts Options) *Host {
	t.Helper()
	dir, err := os.MkdirTemp("/work", "testhost-")
	if err != nil {
		dir = t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &Host{Dir: dir, Address: "127.0.0.1", Port: FreePort(t), t: t}
	for _, d := range []string{"nix", "run/sshd", "etc-ssh/authorized_keys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := filepath.Join(dir, "etc-ssh", "ssh_host_ed25519_key")
	if opts.HostKey != "" {
		if err := os.WriteFile(keyFile, []byte(strings.TrimRight(opts.HostKey, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		pub, err := exec.Command("ssh-keygen", "-y", "-f", keyFile).Output()
		if err != nil {
			t.Fatalf("derive public host key: %v", err)
		}
		if err := os.WriteFile(keyFile+".pub", pub, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	write := func(rel, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("etc-ssh/sshd_config", fmt.Sprintf(sshdConfig, h.Port), 0o644)
	write("etc-ssh/authorized_keys/root", opts.AuthorizedKeys, 0o644)
	script := fmt.Sprintf(`set -e
mount --bind %[1]s/nix /nix
mount --bind %[1]s/run /run
mount --bind %[1]s/etc-ssh /etc/ssh
/usr/sbin/sshd -f /etc/ssh/sshd_config -E /run/sshd.log
exec sleep 2147483647`, dir)
	h.holder = exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script)
	var stderr bytes.Buffer
	h.holder.Stderr = &stderr
	if err := h.holder.Start(); err != nil {
		t.Fatalf("start host: %v", err)
	}
	t.Cleanup(h.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Address, strconv.Itoa(h.Port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "run", "sshd.log"))
			t.Fatalf("host's sshd did not start: %v\n%s\n%s", err, stderr.String(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h
}

// namespace is the mount namespace of the host's processes.
func (h *Host) namespace() string {
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.holder.Process.Pid))
	return ns
}

// Processes lists the pids of every process in the host's namespace.
func (h *Host) Processes() []int {
	ns := h.namespace()
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
	cmd := exec.CommandContext(ctx, "nsenter", "--mount=/proc/"+strconv.Itoa(h.holder.Process.Pid)+"/ns/mnt", "--", "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// HostPublicKey is the public host key sshd has on disk now.
func (h *Host) HostPublicKey() string {
	b, err := os.ReadFile(filepath.Join(h.Dir, "etc-ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		h.t.Fatalf("read host key: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// AuthorizeKey adds an authorized_keys line for root.
func (h *Host) AuthorizeKey(line string) {
	f, err := os.OpenFile(filepath.Join(h.Dir, "etc-ssh", "authorized_keys", "root"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		h.t.Fatal(err)
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
