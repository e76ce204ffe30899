package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// shimSocketEnv names the socket an SSH shim hands its remote command to.
const shimSocketEnv = "LANDSCAPER_SSH_SHIM_SOCKET"

// SSHShimRequested reports whether this process was started as the SSH
// shim of a Client.Copy: as "ssh", with the shim's socket named in its
// environment. A program that copies closures with Client.Copy calls
// RunSSHShim first thing in main (and in TestMain) when it is.
func SSHShimRequested() bool {
	return filepath.Base(os.Args[0]) == "ssh" && os.Getenv(shimSocketEnv) != ""
}

// RunSSHShim is the "ssh" nix copy runs: it takes the remote command from
// its arguments (the last one, as Nix up to 2.19 passes it, or everything
// after "--", as later Nix passes it), hands it to the copying process
// over the socket, then relays its stdin and stdout through it. It
// returns the exit status.
func RunSSHShim() int {
	command := shimCommand(os.Args[1:])
	conn, err := net.Dial("unix", os.Getenv(shimSocketEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "landscaper ssh shim: %v\n", err)
		return 255
	}
	defer conn.Close()
	line, _ := json.Marshal(command)
	if _, err := conn.Write(append(line, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "landscaper ssh shim: %v\n", err)
		return 255
	}
	go func() {
		_, _ = io.Copy(conn, os.Stdin)
		_ = conn.(*net.UnixConn).CloseWrite()
	}()
	if _, err := io.Copy(os.Stdout, conn); err != nil {
		return 255
	}
	return 0
}

// shimCommand is the remote command among ssh's arguments.
func shimCommand(args []string) string {
	for i, a := range args {
		if a == "--" {
			return strings.Join(args[i+1:], " ")
		}
	}
	if len(args) == 0 {
		return ""
	}
	return args[len(args)-1]
}

// allowedShimCommand reports whether a command handed over by the shim is
// one nix copy runs for the store URLs storeURL makes: nix-daemon, directly
// or through sudo -n.
func allowedShimCommand(cmd string) bool {
	for _, prefix := range []string{"nix-daemon --stdio", "sudo -n nix-daemon --stdio"} {
		if cmd == prefix || strings.HasPrefix(cmd, prefix+" ") {
			return true
		}
	}
	return false
}

// shim serves the SSH shims of one Copy.
type shim struct {
	dir    string
	socket string
	ln     net.Listener
	client *Client
	wg     sync.WaitGroup

	mu     sync.Mutex
	stderr capped
}

// startShim listens on a socket in a new private directory, beside an
// "ssh" that is this program.
func startShim(ctx context.Context, c *Client) (*shim, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program for the ssh shim: %w", err)
	}
	dir, err := shimDir()
	if err != nil {
		return nil, err
	}
	s := &shim{dir: dir, socket: filepath.Join(dir, "s"), client: c}
	s.stderr.max = 64 << 10
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Symlink(exe, filepath.Join(dir, "bin", "ssh")); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ssh shim: %w", err)
	}
	if s.ln, err = net.Listen("unix", s.socket); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ssh shim: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(ctx)
	}()
	return s, nil
}

// shimDir makes a private directory (0700) whose socket path fits a unix
// socket address and whose bin directory can go into PATH.
func shimDir() (string, error) {
	var refused []string
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dir, err := os.MkdirTemp(base, "landscaper-copy-")
		if err != nil {
			refused = append(refused, err.Error())
			continue
		}
		if len(dir) > 90 || strings.ContainsAny(dir, ":") {
			os.Remove(dir)
			refused = append(refused, fmt.Sprintf("%q is too long for a socket or holds a colon", dir))
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("no directory for the ssh shim: %s", strings.Join(refused, "; "))
}

// env is environ with the shim first in PATH and its socket named; any
// NIX_SSHOPTS is dropped (the shim takes no options).
func (s *shim) env(environ []string) []string {
	out := make([]string, 0, len(environ)+2)
	path := "/usr/bin:/bin"
	for _, kv := range environ {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=")
		case strings.HasPrefix(kv, "NIX_SSHOPTS="), strings.HasPrefix(kv, shimSocketEnv+"="):
		default:
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+filepath.Join(s.dir, "bin")+":"+path, shimSocketEnv+"="+s.socket)
}

func (s *shim) serve(ctx context.Context) {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			if err := s.relay(ctx, conn); err != nil {
				s.mu.Lock()
				fmt.Fprintf(&s.stderr, "%v\n", err)
				s.mu.Unlock()
			}
		}()
	}
}

// relay runs the command a shim hands over in a session of the client's
// connection, with the shim's stream as its stdin and stdout.
func (s *shim) relay(ctx context.Context, conn net.Conn) error {
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("ssh shim: read the command: %w", err)
	}
	var command string
	if err := json.Unmarshal(line, &command); err != nil {
		return fmt.Errorf("ssh shim: %w", err)
	}
	if !allowedShimCommand(command) {
		return fmt.Errorf("ssh shim: refused to run %q: nix copy runs nix-daemon --stdio", command)
	}
	sess, err := s.client.newSession(ctx)
	if err != nil {
		return fmt.Errorf("open a session on %s: %w", s.client.target.HostPort(), err)
	}
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	sess.Stdout = conn
	sess.Stderr = shimStderr{s}
	if err := sess.Start(command); err != nil {
		return fmt.Errorf("start %s on %s: %w", command, s.client.target.HostPort(), err)
	}
	go func() {
		_, _ = io.Copy(stdin, r)
		_ = stdin.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Close()
		s.client.awaitSession(done)
		return ctx.Err()
	}
	var exit interface{ ExitStatus() int }
	if errors.As(err, &exit) {
		return fmt.Errorf("%s exited with status %d", command, exit.ExitStatus())
	}
	return err
}

// shimStderr collects what remote commands write to stderr.
type shimStderr struct{ s *shim }

func (w shimStderr) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.stderr.Write(p)
}

func (s *shim) remoteStderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// close stops listening, waits for the relays and removes the directory.
func (s *shim) close() {
	_ = s.ln.Close()
	s.wg.Wait()
	_ = os.RemoveAll(s.dir)
}
