package sshkeypair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSSHDAcceptsKeys starts a real sshd that trusts the generated public
// keys and logs in with each private key, host key checked.
func TestSSHDAcceptsKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sshd")
	}
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		t.Fatalf("no sshd (scripts/install-deps.sh installs openssh-server): %v", err)
	}
	sshClient := needTool(t, "ssh")
	keygen := needTool(t, "ssh-keygen")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	h := newHarness(t)
	keys := []struct {
		name   string
		inputs map[string]any
	}{
		{"ed25519", map[string]any{"algorithm": "ed25519", "comment": "ed"}},
		{"ecdsa 256", map[string]any{"algorithm": "ecdsa", "comment": "e256"}},
		{"ecdsa 384", map[string]any{"algorithm": "ecdsa", "bits": 384, "comment": "e384"}},
		{"ecdsa 521", map[string]any{"algorithm": "ecdsa", "bits": 521, "comment": "e521"}},
		{"rsa 2048", map[string]any{"algorithm": "rsa", "bits": 2048, "comment": "rsa"}},
	}
	dir := t.TempDir()
	var authorized strings.Builder
	keyFiles := map[string]string{}
	fingerprints := map[string]string{}
	for _, k := range keys {
		s, _ := h.Create(typ, k.inputs)
		out := stateOutputs(t, s)
		authorized.WriteString(out.PublicKey + "\n")
		keyFiles[k.name] = writeKey(t, out.PrivateKey)
		fingerprints[k.name] = out.Fingerprint
	}
	// A key sshd does not know, to show that a login is not a given.
	stranger, _ := h.Create(typ, map[string]any{"comment": "stranger"})
	strangerFile := writeKey(t, stateOutputs(t, stranger).PrivateKey)

	authorizedKeys := filepath.Join(dir, "authorized_keys")
	writeFile(t, authorizedKeys, authorized.String())
	hostKey := filepath.Join(dir, "host_ed25519")
	run(t, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hostKey)
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}

	srv := startSSHD(t, sshd, dir, hostKey, authorizedKeys)
	knownHosts := filepath.Join(dir, "known_hosts")
	writeFile(t, knownHosts, fmt.Sprintf("[127.0.0.1]:%d %s", srv.port, hostPub))

	login := func(key string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sshClient,
			"-F", "none",
			"-i", key,
			"-p", fmt.Sprint(srv.port),
			"-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+knownHosts,
			"-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes",
			"-o", "IdentitiesOnly=yes",
			"-o", "IdentityAgent=none",
			"-o", "ConnectTimeout=10",
			me.Username+"@127.0.0.1", "true")
		cmd.Stdin = nil
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			if out, err := login(keyFiles[k.name]); err != nil {
				t.Fatalf("ssh with the %s key: %v\n%s\nsshd said:\n%s", k.name, err, out, srv.log())
			}
			// sshd names the key it accepted by its fingerprint.
			accepted := "Accepted publickey for " + me.Username + " from 127.0.0.1"
			found := false
			for _, line := range strings.Split(srv.log(), "\n") {
				if strings.Contains(line, accepted) && strings.HasSuffix(strings.TrimSpace(line), fingerprints[k.name]) {
					found = true
				}
			}
			if !found {
				t.Errorf("sshd did not log accepting key %s:\n%s", fingerprints[k.name], srv.log())
			}
		})
	}
	t.Run("unknown key refused", func(t *testing.T) {
		out, err := login(strangerFile)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 255 || !strings.Contains(out, "Permission denied") {
			t.Fatalf("ssh with a key sshd does not trust: %v\n%s; want permission denied", err, out)
		}
	})
}

// sshdServer is a running sshd.
type sshdServer struct {
	port   int
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (s *sshdServer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.Write(p)
}

func (s *sshdServer) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// startSSHD runs sshd in the foreground on a free port of 127.0.0.1 with a
// configuration of its own in dir, and stops it when the test ends. A port
// taken between choosing and binding it is retried.
func startSSHD(t *testing.T, sshd, dir, hostKey, authorizedKeys string) *sshdServer {
	t.Helper()
	// sshd's privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("cannot create /run/sshd: %v", err)
	}
	var lastLog string
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		config := filepath.Join(dir, fmt.Sprintf("sshd_config.%d", attempt))
		writeFile(t, config, strings.Join([]string{
			"ListenAddress 127.0.0.1",
			fmt.Sprintf("Port %d", port),
			"HostKey " + hostKey,
			"AuthorizedKeysFile " + authorizedKeys,
			"PidFile none",
			"StrictModes no",
			"UsePAM no",
			"PubkeyAuthentication yes",
			"PermitRootLogin prohibit-password",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitEmptyPasswords no",
			"X11Forwarding no",
			"AllowAgentForwarding no",
			"LogLevel VERBOSE",
			"",
		}, "\n"))
		run(t, sshd, "-t", "-f", config) // a bad configuration fails here, clearly

		srv := &sshdServer{port: port}
		cmd := exec.Command(sshd, "-D", "-e", "-f", config)
		cmd.Stdout, cmd.Stderr = srv, srv
		// Its own process group, so the cleanup ends the session
		// processes it forks too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		stop := func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		if waitListening(srv, exited, fmt.Sprintf("Server listening on 127.0.0.1 port %d", port)) {
			t.Cleanup(stop)
			return srv
		}
		stop()
		// Exited or never listened: most likely the port was taken.
		lastLog = srv.log()
	}
	t.Fatalf("sshd did not start:\n%s", lastLog)
	return nil
}

// waitListening waits up to 10 s for sshd to say it listens; false when it
// exits first or does not.
func waitListening(srv *sshdServer, exited <-chan struct{}, listening string) bool {
	deadline := time.After(10 * time.Second)
	for !strings.Contains(srv.log(), listening) {
		select {
		case <-exited:
			return strings.Contains(srv.log(), listening)
		case <-deadline:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
