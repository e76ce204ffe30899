// Package remote runs commands on a NixOS target over SSH with the host key
// pinned, and copies store paths to it with nix copy. Every dial and every
// command is bounded by its context; a host presenting a key other than the
// pinned one is refused during the key exchange, before any credential is
// offered to it.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Target is a host and how to log in to it.
type Target struct {
	Address string
	Port    int
	User    string
	// PrivateKey is the login key in OpenSSH (PEM) form. It is secret.
	PrivateKey string
	// HostKey is the public key the host must present, as an
	// authorized_keys line ("ssh-ed25519 AAAA... comment").
	HostKey string
	// Sudo prefixes commands with "sudo -n", and Copy runs the target's
	// nix-daemon with it.
	Sudo bool
	// Vet, when set, is called once the host has presented the pinned
	// key, before any credential is offered to it. An error from it ends
	// the dial with a *VetoError: the login key is never offered.
	Vet func() error
}

// HostPort is the address ssh dials, "host:port".
func (t Target) HostPort() string {
	return net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
}

// String names the target for messages: "root@10.0.0.5:22".
func (t Target) String() string {
	return t.User + "@" + t.HostPort()
}

// HostKeyMismatchError is returned when the host presents a key other than
// the pinned one. No credential was offered to the host.
type HostKeyMismatchError struct {
	Host string
	// Want and Got are SHA256 fingerprints.
	Want, Got string
	GotKey    ssh.PublicKey
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host %s presented host key %s, but %s is pinned; refused before authenticating (no credential was offered)", e.Host, e.Got, e.Want)
}

// VetoError is returned when the host presented the pinned key but
// Target.Vet refused to go on. No credential was offered to the host.
type VetoError struct {
	Host string
	Err  error
}

func (e *VetoError) Error() string {
	return fmt.Sprintf("host %s presented the pinned host key, but it is not trusted; refused before authenticating (no credential was offered): %v", e.Host, e.Err)
}

func (e *VetoError) Unwrap() error { return e.Err }

// AuthError is returned when the host was the right one but refused the
// login key.
type AuthError struct {
	Target string
	Err    error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("log in to %s: %v", e.Target, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// ParsePublicKey parses an authorized_keys line.
func ParsePublicKey(line string) (ssh.PublicKey, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(line)))
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return key, nil
}

// Fingerprint is the SHA256 fingerprint of an authorized_keys line, or a
// note that it cannot be parsed.
func Fingerprint(line string) string {
	key, err := ParsePublicKey(line)
	if err != nil {
		return "(unparsable key)"
	}
	return ssh.FingerprintSHA256(key)
}

// hostKeyAlgorithms lists the algorithms that make a host present a key of
// the pinned key's type, so that a host with several keys is asked for the
// pinned one.
func hostKeyAlgorithms(key ssh.PublicKey) []string {
	switch key.Type() {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{key.Type()}
	}
}

// Client is an SSH connection to a target.
type Client struct {
	target Target
	conn   *ssh.Client
}

// Dial connects and logs in, checking the host key first. ctx bounds the
// TCP connect, the key exchange and the authentication.
func Dial(ctx context.Context, t Target) (*Client, error) {
	pinned, err := ParsePublicKey(t.HostKey)
	if err != nil {
		return nil, fmt.Errorf("pinned host key of %s: %w", t.HostPort(), err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(t.PrivateKey))
	if err != nil {
		// The parser's message does not contain the key.
		return nil, fmt.Errorf("login key for %s: %w", t.String(), err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.HostPort())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.HostPort(), err)
	}
	// The handshake has no context of its own: a deadline on the
	// connection bounds it, and cancellation closes it.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var mismatch *HostKeyMismatchError
	var veto *VetoError
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), pinned.Marshal()) {
				if t.Vet != nil {
					if err := t.Vet(); err != nil {
						veto = &VetoError{Host: t.HostPort(), Err: err}
						return veto
					}
				}
				return nil
			}
			mismatch = &HostKeyMismatchError{Host: t.HostPort(), Want: ssh.FingerprintSHA256(pinned), Got: ssh.FingerprintSHA256(key), GotKey: key}
			return mismatch
		},
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, t.HostPort(), cfg)
	if err != nil {
		nc.Close()
		switch {
		case mismatch != nil:
			return nil, mismatch
		case veto != nil:
			return nil, veto
		case ctx.Err() != nil:
			return nil, fmt.Errorf("ssh handshake with %s: %w", t.HostPort(), ctx.Err())
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, &AuthError{Target: t.String(), Err: err}
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", t.HostPort(), err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &Client{target: t, conn: ssh.NewClient(sc, chans, reqs)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Alive reports whether the connection still answers a keepalive request
// within timeout (a connection that does not is closed).
func (c *Client) Alive(timeout time.Duration) bool {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(timeout):
		c.conn.Close()
		return false
	}
}

// Target is the target this client is connected to.
func (c *Client) Target() Target { return c.target }

// maxOutput bounds what Run keeps of a command's stdout and stderr.
const maxOutput = 4 << 20

// Result is what a remote command did.
type Result struct {
	Stdout, Stderr string
	// ExitCode is the command's exit status; -1 when it died of a signal or
	// the connection dropped before it ended.
	ExitCode int
}

// ExitError is returned by Run for a command that exited non-zero.
type ExitError struct {
	Command string
	Result
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(tail(e.Stderr, 10))
	if msg == "" {
		msg = strings.TrimSpace(tail(e.Stdout, 10))
	}
	if msg != "" {
		return fmt.Sprintf("%s exited with status %d: %s", e.Command, e.ExitCode, msg)
	}
	return fmt.Sprintf("%s exited with status %d", e.Command, e.ExitCode)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Run runs script with sh on the target (as root through sudo when the
// target asks for it), feeding it stdin. name describes it in errors. The
// command is ended when ctx is done. A non-zero exit is an *ExitError.
func (c *Client) Run(ctx context.Context, name, script string, stdin io.Reader) (Result, error) {
	sess, err := c.newSession(ctx)
	if err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("%s on %s: open session: %w", name, c.target.HostPort(), err)
	}
	defer sess.Close()
	var stdout, stderr capped
	stdout.max, stderr.max = maxOutput, maxOutput
	sess.Stdout, sess.Stderr, sess.Stdin = &stdout, &stderr, stdin
	cmd := "sh -c " + Quote(script)
	if c.target.Sudo {
		cmd = "sudo -n " + cmd
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		c.awaitSession(done)
		return Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}, fmt.Errorf("%s on %s: %w", name, c.target.HostPort(), ctx.Err())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		if exit.Signal() != "" {
			res.ExitCode = -1
		}
		return res, &ExitError{Command: name + " on " + c.target.HostPort(), Result: res}
	default:
		res.ExitCode = -1
		return res, fmt.Errorf("%s on %s: %w", name, c.target.HostPort(), err)
	}
}

// newSession opens a session, giving up the connection when ctx ends
// first: opening waits for the peer's answer, which a peer gone without
// a word never sends.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		sess *ssh.Session
		err  error
	}
	ch := make(chan opened, 1)
	go func() {
		sess, err := c.conn.NewSession()
		ch <- opened{sess, err}
	}()
	select {
	case o := <-ch:
		return o.sess, o.err
	case <-ctx.Done():
		_ = c.conn.Close()
		if o := <-ch; o.sess != nil {
			o.sess.Close()
		}
		return nil, ctx.Err()
	}
}

// sessionGrace is how long a cancelled session may take to end before
// its connection is given up.
const sessionGrace = 5 * time.Second

// awaitSession waits for a cancelled session's goroutine (done). A peer
// that went away without a word (a machine rebooting behind NAT, where
// nothing resets the connection) never ends the session: after
// sessionGrace the whole connection is closed, which ends it.
func (c *Client) awaitSession(done <-chan error) {
	select {
	case <-done:
	case <-time.After(sessionGrace):
		_ = c.conn.Close()
		<-done
	}
}

// NotRootError is returned by CheckRoot when commands on the target do
// not run as root: sudo -n refused (no passwordless sudo, no sudo at
// all), or, without Sudo, the login user is not root.
type NotRootError struct {
	// Target is "user@host:port".
	Target string
	User   string
	Sudo   bool
	// Detail is sudo's message, or the user ID commands run as.
	Detail string
}

func (e *NotRootError) Error() string {
	if e.Sudo {
		return fmt.Sprintf("%s cannot run commands as root with \"sudo -n\": %s; %s needs passwordless sudo (on NixOS: users.users.%s.extraGroups = [ \"wheel\" ] and security.sudo.wheelNeedsPassword = false), or log in as root",
			e.Target, e.Detail, e.User, e.User)
	}
	return fmt.Sprintf("commands on %s run as user ID %s, not as root: log in as root, or run them through \"sudo -n\" (sudo = true, the default for a user other than root)", e.Target, e.Detail)
}

// CheckRoot makes sure that commands run as root on the target: through
// "sudo -n" when the target asks for it, else as the login user, which
// must then be root. Every change a deployment makes needs root, so this
// is checked before the first one: a user without passwordless sudo gets
// a *NotRootError while nothing has changed.
func (c *Client) CheckRoot(ctx context.Context) error {
	res, err := c.Run(ctx, "check that commands run as root", "id -u", nil)
	return c.RootFrom(strings.TrimSpace(res.Stdout), err)
}

// RootFrom is CheckRoot's verdict on a command that printed the user ID
// it ran as (`id -u`), uid, before anything else, and ended with err: a
// script that reads the host anyway can tell it, one round trip fewer.
// A command that failed before it said who it ran as, through sudo, is
// sudo's refusal ("sudo: a password is required"), or no sudo ("sudo:
// not found"): a *NotRootError.
func (c *Client) RootFrom(uid string, err error) error {
	var exit *ExitError
	switch {
	case errors.As(err, &exit) && c.target.Sudo && uid == "":
		detail := strings.TrimSpace(tail(exit.Stderr, 5))
		if detail == "" {
			detail = fmt.Sprintf("sudo -n exited with status %d", exit.ExitCode)
		}
		return &NotRootError{Target: c.target.String(), User: c.target.User, Sudo: true, Detail: detail}
	case err != nil:
		return err
	}
	if uid != "0" {
		detail := uid
		if c.target.Sudo {
			detail = "it ran them as user ID " + uid
		}
		return &NotRootError{Target: c.target.String(), User: c.target.User, Sudo: c.target.Sudo, Detail: detail}
	}
	return nil
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// capped is a buffer that keeps at most max bytes.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		if len(p) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}
