package installtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

const (
	// commandTimeout bounds one landscaper run, and the wait for the
	// stand-in server's entry; a hang fails the test instead of the whole
	// package timing out.
	commandTimeout = 5 * time.Minute
	// serverStartTimeout bounds how long landscaper serve may take to
	// listen, serverStopTimeout how long it may take to exit on SIGTERM.
	serverStartTimeout = 30 * time.Second
	serverStopTimeout  = 20 * time.Second
)

// requireTools fails the test for each tool it needs that is missing,
// naming the Debian package scripts/install-deps.sh installs.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the install test starts sshd in mount namespaces: run it as root")
	}
	var missing []string
	for _, tool := range []struct{ name, pkg string }{
		{"nix-instantiate", "nix-bin"}, {"nix-store", "nix-bin"}, {"nix-daemon", "nix-bin"},
		{"curl", "curl"}, {"cpio", "cpio"}, {"unshare", "util-linux"}, {"nsenter", "util-linux"},
		{"/usr/sbin/sshd", "openssh-server"}, {"ssh", "openssh-client"}, {"ssh-keyscan", "openssh-client"}, {"ssh-keygen", "openssh-client"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s not found: install Debian's %s", tool.name, tool.pkg))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the install test needs tools that are missing (scripts/install-deps.sh installs them):\n  %s", strings.Join(missing, "\n  "))
	}
}

// run is a landscaper command running in the background.
type run struct {
	args           []string
	cmd            *exec.Cmd
	stdout, stderr *testbin.Output
	cancel         context.CancelFunc
	done           chan struct{}
	code           int
	err            error
}

// start starts landscaper ARGS in dir.
func start(t *testing.T, dir string, args ...string) *run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	r := &run{args: args, stdout: &testbin.Output{}, stderr: &testbin.Output{}, cancel: cancel, done: make(chan struct{})}
	r.cmd = exec.CommandContext(ctx, filepath.Join(testbin.Dir(t), "landscaper"), args...)
	r.cmd.Dir = dir
	r.cmd.Env = testbin.Env()
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start landscaper %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		defer close(r.done)
		defer cancel()
		err := r.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			r.code, r.err = -1, fmt.Errorf("timed out after %s", commandTimeout)
		case errors.As(err, &ee):
			r.code = ee.ExitCode()
		case err != nil:
			r.code, r.err = -1, err
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// wait waits for the command and fails the test unless it exits with want.
func (r *run) wait(t *testing.T, want int) {
	t.Helper()
	<-r.done
	if r.err != nil || r.code != want {
		t.Fatalf("landscaper %s: exit %d (%v), want %d\n%s", strings.Join(r.args, " "), r.code, r.err, want, r.output())
	}
}

func (r *run) output() string {
	return "stdout:\n" + r.stdout.String() + "\nstderr:\n" + r.stderr.String()
}

// landscaper runs landscaper ARGS in dir, fails the test unless it exits
// with want, and returns the run.
func landscaper(t *testing.T, dir string, want int, args ...string) *run {
	t.Helper()
	r := start(t, dir, args...)
	r.wait(t, want)
	return r
}

// server is a running `landscaper serve`.
type server struct {
	cmd      *exec.Cmd
	log      *testbin.Output
	exited   chan struct{}
	tftpAddr string
	httpAddr string
}

var listenAddrRe = regexp.MustCompile(`\b(tftp|http)="?([0-9.]+:[0-9]+)"?`)

// startServer starts landscaper serve on loopback, on ports the kernel
// picks (read back from its "boot server listening" line), with the boot
// directory bootDir and no iPXE binaries. It is stopped (SIGTERM) when the
// test ends.
func startServer(t *testing.T, bootDir string) *server {
	t.Helper()
	s := &server{log: &testbin.Output{}, exited: make(chan struct{})}
	args := []string{"serve", "--boot-dir", bootDir, "--tftp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--ipxe-dir", ""}
	s.cmd = exec.Command(filepath.Join(testbin.Dir(t), "landscaper"), args...)
	s.cmd.Env = testbin.Env()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start landscaper %s: %v", strings.Join(args, " "), err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.After(serverStartTimeout)
	for {
		select {
		case <-s.exited:
			t.Fatalf("landscaper %s exited before listening\n%s", strings.Join(args, " "), s.log.String())
		case <-deadline:
			t.Fatalf("landscaper serve did not listen within %s\n%s", serverStartTimeout, s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		for _, l := range strings.Split(s.log.String(), "\n") {
			if !strings.Contains(l, `msg="boot server listening"`) {
				continue
			}
			for _, m := range listenAddrRe.FindAllStringSubmatch(l, -1) {
				if m[1] == "tftp" {
					s.tftpAddr = m[2]
				} else {
					s.httpAddr = m[2]
				}
			}
			if s.tftpAddr == "" || s.httpAddr == "" {
				t.Fatalf("cannot read the listeners' addresses from %q", l)
			}
			return s
		}
	}
}

// stop sends SIGTERM and waits for the server, killing it if it does not
// exit in time.
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

// keyOnly is an authorized_keys line without its comment: "type base64".
func keyOnly(t *testing.T, line string) string {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("parse public key %q: %v", line, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// publicOf is the public key of an OpenSSH private key, as "type base64".
func publicOf(t *testing.T, private string) string {
	t.Helper()
	signer, err := ssh.ParsePrivateKey([]byte(private))
	if err != nil {
		t.Fatalf("parse the private key: %v", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// presentedKey is the ed25519 host key sshd on 127.0.0.1:port presents, as
// OpenSSH's ssh-keyscan sees it ("type base64").
func presentedKey(t *testing.T, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh-keyscan", "-T", "20", "-t", "ed25519", "-p", fmt.Sprint(port), "127.0.0.1").Output()
	if err != nil {
		t.Fatalf("ssh-keyscan: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && !strings.HasPrefix(l, "#") {
			return f[1] + " " + f[2]
		}
	}
	t.Fatalf("ssh-keyscan printed no key:\n%s", out)
	return ""
}
