// Package pulltest tests pull mode as a whole: stand-in hosts (the
// namespaced hosts of internal/testhost, each with its own /nix and /run)
// run the real `landscaper agent` against a real `landscaper serve
// --pull-dir` on loopback.
package pulltest

import (
	"context"
	"errors"
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

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

const (
	serverStartTimeout = 30 * time.Second
	agentTimeout       = 3 * time.Minute
)

// server is a running `landscaper serve --pull-dir`.
type server struct {
	dir  pulldir.Dir
	port int
	cmd  *exec.Cmd
	log  *testbin.Output
	done chan struct{}
}

func (s *server) url() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// startServer starts landscaper serve with the pull directory on the
// given loopback port (0: a free one) and waits until it listens.
func startServer(t *testing.T, dir pulldir.Dir, port int) *server {
	t.Helper()
	if port == 0 {
		port = testhost.FreePort(t)
	}
	s := &server{dir: dir, port: port, log: &testbin.Output{}, done: make(chan struct{})}
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	s.cmd = exec.Command(bin, "serve", "--pull-dir", dir.Path, "--boot-dir", t.TempDir(), "--tftp-listen", "", "--http-listen", "127.0.0.1:"+strconv.Itoa(port), "--ipxe-dir", "")
	s.cmd.Env = testbin.Env()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(serverStartTimeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("landscaper serve exited:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("landscaper serve did not listen within %s:\n%s", serverStartTimeout, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server (SIGTERM, then SIGKILL) and waits for it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("landscaper serve did not exit within 20 s of SIGTERM")
	}
}

// pullHost is a stand-in host with its keys.
type pullHost struct {
	*testhost.Host
	key    ssh.PublicKey
	signer ssh.Signer
}

func startHost(t *testing.T) *pullHost {
	t.Helper()
	h := testhost.Start(t, testhost.Options{})
	pem, err := os.ReadFile(filepath.Join(h.Dir, "etc-ssh", "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	return &pullHost{Host: h, key: signer.PublicKey(), signer: signer}
}

func (h *pullHost) id() string { return pulldir.HostID(h.key) }

// agentCommand is the shell command that runs the agent inside the host.
func agentCommand(t *testing.T, s *server, serverKey string, extra ...string) string {
	t.Helper()
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	args := []string{bin, "agent", "--server", s.url(), "--server-key", serverKey, "--host-key", "/etc/ssh/ssh_host_ed25519_key", "--state-dir", "/run/landscaper-agent"}
	args = append(args, extra...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// agentOnce runs `landscaper agent --once` inside the host and returns its
// output and exit code.
func agentOnce(t *testing.T, h *pullHost, s *server, serverKey string) (string, int) {
	t.Helper()
	return agentOnceArgs(t, h, s, serverKey)
}

// agentOnceArgs is agentOnce with more arguments.
func agentOnceArgs(t *testing.T, h *pullHost, s *server, serverKey string, extra ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	out, err := h.Exec(ctx, agentCommand(t, s, serverKey, append([]string{"--once"}, extra...)...)+" 2>&1")
	if ctx.Err() != nil {
		t.Fatalf("the agent did not finish within %s:\n%s", agentTimeout, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run the agent: %v\n%s", err, out)
	}
	return out, 0
}

// startAgent runs the agent inside the host in the background, until the
// test ends; its output goes to the host's /run/agent.log.
func startAgent(t *testing.T, h *pullHost, s *server, extra ...string) {
	t.Helper()
	cmd := agentCommand(t, s, filepath.Join(s.dir.Path, "server.pub"), extra...)
	// Every descriptor away from Exec's pipe, or Exec waits for the agent.
	script := "echo $$ > /run/agent.pid; exec " + cmd
	if out, err := h.Exec(context.Background(), "setsid -f sh -c "+shq(script)+" </dev/null >>/run/agent.log 2>&1"); err != nil {
		t.Fatalf("start the agent: %v: %s", err, out)
	}
}

// stopAgent stops the agent startAgent started.
func stopAgent(t *testing.T, h *pullHost) {
	t.Helper()
	if out, err := h.Exec(context.Background(), `pid=$(cat /run/agent.pid); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done`); err != nil {
		t.Fatalf("stop the agent: %v: %s", err, out)
	}
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// hostFile reads a file inside the host's /run.
func hostFile(h *pullHost, p string) (string, os.FileMode, error) {
	rel, ok := strings.CutPrefix(p, "/run/")
	if !ok {
		return "", 0, fmt.Errorf("%s is not under /run", p)
	}
	full := filepath.Join(h.Dir, "run", rel)
	st, err := os.Stat(full)
	if err != nil {
		return "", 0, err
	}
	b, err := os.ReadFile(full)
	return string(b), st.Mode().Perm(), err
}

// latestReport is the host's newest report in the pull directory.
func latestReport(t *testing.T, dir pulldir.Dir, h *pullHost) (pulldir.Report, bool) {
	t.Helper()
	reports, err := dir.Reports(h.id())
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		return pulldir.Report{}, false
	}
	return reports[0], true
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gatedSystem is a stand-in system whose `switch-to-configuration test`
// waits until /run/gate exists (after touching /run/gated-activating):
// a test can act at a known point of the activation.
func gatedSystem(t *testing.T) string {
	t.Helper()
	expr := `derivation {
  name = "nixos-system-standin-gated";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  stc = ''
    #!/bin/sh
    self=@out@
    mkdir -p /nix/var/standin
    echo "$self $1" >> /nix/var/standin/log
    case "$1" in
    test|switch)
      touch /run/gated-activating
      i=0
      while [ ! -e /run/gate ] && [ "$i" -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
      ln -sfn "$self" /run/current-system ;;
    esac
    case "$1" in
    boot|switch) echo "$self" > /nix/var/standin/boot-default ;;
    esac
    exit 0
  '';
  args = [ "-c" ''
    mkdir -p $out/bin
    printf '%s' "$stc" | sed -e "s|@out@|$out|g" -e 's|^    ||' > $out/bin/switch-to-configuration
    chmod +x $out/bin/switch-to-configuration
  '' ];
}`
	cmd := exec.Command("nix-build", "--no-out-link", "-E", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build the gated system: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
