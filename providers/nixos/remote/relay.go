package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// storeRelay is the destination store of one Client.Copy: a unix socket in
// a private directory (0700) that nix copy connects to (unix://SOCKET),
// each connection relayed to the target's nix-daemon --stdio, run in a
// session of the client's connection. Nix speaks the same protocol to a
// unix socket as to ssh-ng's remote nix-daemon, so nothing but the
// transport changes: no ssh process, no second login.
type storeRelay struct {
	dir    string
	socket string
	// command is what runs on the target: nix-daemon --stdio, with
	// sudo -n and --store as the copy asks.
	command string
	ln      net.Listener
	client  *Client
	wg      sync.WaitGroup

	mu     sync.Mutex
	stderr capped
}

// daemonCommand is the target's command that serves a copy: nix-daemon
// --stdio (as ssh-ng runs it), into the store opts names, through
// "sudo -n" when the target asks for it (nix-daemon then runs as root,
// opens the store itself and trusts its client: the login user needs
// passwordless sudo, and need not be one of Nix's trusted-users).
func daemonCommand(t Target, opts CopyOptions) string {
	cmd := "nix-daemon --stdio"
	if opts.RemoteStore != "" {
		cmd += " --store " + Quote(opts.RemoteStore)
	}
	if t.Sudo {
		cmd = "sudo -n " + cmd
	}
	return cmd
}

// startRelay listens on a socket in a new private directory and relays
// every connection to command over c.
func startRelay(ctx context.Context, c *Client, command string) (*storeRelay, error) {
	dir, err := relayDir()
	if err != nil {
		return nil, err
	}
	s := &storeRelay{dir: dir, socket: filepath.Join(dir, "s"), command: command, client: c}
	s.stderr.max = 64 << 10
	if s.ln, err = net.Listen("unix", s.socket); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("store socket: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(ctx)
	}()
	return s, nil
}

// storeURL is the store nix copy copies to: the relay's socket.
func (s *storeRelay) storeURL() string { return "unix://" + s.socket }

// relayDir makes a private directory (0700) whose socket path fits a
// unix socket address and reads the same in every Nix version's store
// URL (no characters a URL would encode or split at).
func relayDir() (string, error) {
	var refused []string
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dir, err := os.MkdirTemp(base, "landscaper-copy-")
		if err != nil {
			refused = append(refused, err.Error())
			continue
		}
		if len(dir) > 90 || strings.Trim(dir, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != "" {
			os.Remove(dir)
			refused = append(refused, fmt.Sprintf("%q is too long for a socket or holds characters a store URL would change", dir))
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("no directory for the store socket: %s", strings.Join(refused, "; "))
}

func (s *storeRelay) serve(ctx context.Context) {
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

// relay runs the command in a session of the client's connection, with
// the socket's stream as its stdin and stdout.
func (s *storeRelay) relay(ctx context.Context, conn net.Conn) error {
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
	sess.Stderr = relayStderr{s}
	if err := sess.Start(s.command); err != nil {
		return fmt.Errorf("start %s on %s: %w", s.command, s.client.target.HostPort(), err)
	}
	go func() {
		_, _ = io.Copy(stdin, conn)
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
		return fmt.Errorf("%s exited with status %d", s.command, exit.ExitStatus())
	}
	return err
}

// relayStderr collects what the remote commands write to stderr.
type relayStderr struct{ s *storeRelay }

func (w relayStderr) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.stderr.Write(p)
}

func (s *storeRelay) remoteStderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// close stops listening, waits for the relays and removes the directory.
func (s *storeRelay) close() {
	_ = s.ln.Close()
	s.wg.Wait()
	_ = os.RemoveAll(s.dir)
}
