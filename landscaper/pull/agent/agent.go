// Package agent is `landscaper agent`: it runs on a pulled host, fetches
// the host's desired generation from the pull server, realises its
// closure from the server's binary cache, writes its secrets, activates
// it under the same dead-man switch as nixos.system (test, health checks,
// then boot; rolled back unless the host reaches the server over a new
// connection within confirmTimeout) and reports the result.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
)

// DefaultInterval is how long a running agent waits between cycles when
// nothing new comes (each wait is a long-poll: a new generation starts a
// cycle at once).
const DefaultInterval = 5 * time.Minute

// maxBackoff caps the wait before the next try after a failed fetch: a
// host the server does not know yet (its generation is not published)
// or an unreachable server is tried again at least this often.
const maxBackoff = 15 * time.Second

// Config says what an agent talks to and where it keeps its state.
type Config struct {
	// Server is the pull server's base URL.
	Server string
	// ServerKey is the pinned key of the server's answers.
	ServerKey ssh.PublicKey
	// HostKeyPath is the host's ed25519 SSH host key (private half).
	HostKeyPath string
	// StateDir holds the agent's state, its pending report and its
	// trigger socket.
	StateDir string
	// Interval is the long-poll's wait (DefaultInterval when zero).
	Interval time.Duration
	// Role, with EnrollToken, enrolls the host in a role of
	// nixos.pull-role when the server does not know it yet; the token
	// also opens the role's secrets.
	Role        string
	EnrollToken string
	Logger      *slog.Logger
}

// Agent is a configured agent.
type Agent struct {
	cfg      Config
	client   *pullclient.Client
	identity age.Identity
	// roleIdentity opens the role's secrets; nil without a role.
	roleIdentity age.Identity
	log          *slog.Logger
}

// New reads the host key and makes the agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateDir == "" {
		return nil, errors.New("agent: no state directory")
	}
	if (cfg.Role == "") != (cfg.EnrollToken == "") {
		return nil, errors.New("agent: a role needs its enrollment token, and a token its role")
	}
	pem, err := os.ReadFile(cfg.HostKeyPath)
	if err != nil {
		return nil, fmt.Errorf("agent: read the host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("agent: host key %s: %w", cfg.HostKeyPath, err)
	}
	identity, err := pullsecret.Identity(pem)
	if err != nil {
		return nil, fmt.Errorf("agent: host key %s: %w", cfg.HostKeyPath, err)
	}
	client, err := pullclient.New(cfg.Server, signer, cfg.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state directory: %w", err)
	}
	a := &Agent{cfg: cfg, client: client, identity: identity, log: cfg.Logger}
	if cfg.Role != "" {
		if err := pulldir.ValidRole(cfg.Role); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		if a.roleIdentity, err = pullsecret.RoleIdentity(cfg.EnrollToken); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	return a, nil
}

// desired fetches the desired generation; a host the server does not
// know enrolls in its role, when it has one, and asks again.
func (a *Agent) desired(ctx context.Context, known int64, wait time.Duration) (pullapi.DesiredAnswer, error) {
	answer, err := a.client.Desired(ctx, known, wait)
	if err == nil || a.cfg.Role == "" || !pullclient.IsUnknownHost(err) {
		return answer, err
	}
	if err := a.client.Enroll(ctx, a.cfg.Role, a.cfg.EnrollToken); err != nil {
		return answer, err
	}
	a.log.Info("enrolled in role "+a.cfg.Role, "host", a.ID())
	return a.client.Desired(ctx, known, wait)
}

// ID is the host's ID on the server.
func (a *Agent) ID() string { return a.client.ID() }

// Once runs one cycle and reports whether the host runs its desired
// generation at its end.
func (a *Agent) Once(ctx context.Context) (bool, error) {
	answer, err := a.desired(ctx, -1, 0)
	if err != nil {
		a.sendPending(ctx)
		return false, err
	}
	return a.cycle(ctx, answer)
}

// TriggerSocket is the unix socket a connection to which starts a cycle
// at once.
func (a *Agent) TriggerSocket() string { return filepath.Join(a.cfg.StateDir, "trigger.sock") }

// Run runs cycles until ctx ends: each waits (a long-poll) for the next
// generation, at most Interval, or for a trigger.
func (a *Agent) Run(ctx context.Context) error {
	trigger, stop, err := a.listenTrigger(ctx)
	if err != nil {
		return err
	}
	defer stop()
	known, wait := int64(-1), time.Duration(0)
	backoff := time.Second
	for {
		type result struct {
			answer pullapi.DesiredAnswer
			err    error
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan result, 1)
		go func() {
			ans, err := a.desired(pctx, known, wait)
			done <- result{ans, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-trigger:
			cancel()
			<-done
			a.log.Info("triggered: starting a cycle")
			known, wait = -1, 0
			continue
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		}
		cancel()
		if r.err != nil {
			a.log.Warn("cannot fetch the desired generation", "error", r.err, "retry_in", backoff)
			a.sendPending(ctx)
			select {
			case <-ctx.Done():
				return nil
			case <-trigger:
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, a.cfg.Interval, maxBackoff)
			known, wait = -1, 0
			continue
		}
		backoff = time.Second
		if _, err := a.cycle(ctx, r.answer); err != nil {
			a.log.Error("cycle failed", "error", err)
		}
		known, wait = 0, a.cfg.Interval
		if r.answer.Desired != nil {
			known = r.answer.Desired.Generation
		}
	}
}

// listenTrigger listens on the trigger socket (mode 0600); each
// connection sends on the returned channel.
func (a *Agent) listenTrigger(ctx context.Context) (<-chan struct{}, func(), error) {
	p := a.TriggerSocket()
	_ = os.Remove(p)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", p)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: trigger socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("agent: trigger socket: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
			_, _ = c.Write([]byte("cycle triggered\n"))
			c.Close()
		}
	}()
	return ch, func() { ln.Close(); os.Remove(p) }, nil
}

// Trigger asks the agent whose state directory is stateDir to start a
// cycle now.
func Trigger(ctx context.Context, stateDir string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(stateDir, "trigger.sock"))
	if err != nil {
		return fmt.Errorf("trigger the agent: %w", err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	_, _ = c.Read(buf)
	return nil
}
