package nixos

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/internal/activation"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// StepError is a failed deployment: the step that failed, why, and what
// became of the host.
type StepError = activation.StepError

// sshRunner runs the activation's scripts on the target over an SSH
// connection.
type sshRunner struct{ c *remote.Client }

func (s sshRunner) Run(ctx context.Context, name, script string, stdin io.Reader, args ...string) (string, error) {
	if len(args) > 0 {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = remote.Quote(a)
		}
		script = "set -- " + strings.Join(quoted, " ") + "\n" + script
	}
	res, err := s.c.Run(ctx, name, script, stdin)
	return res.Stdout, err
}

func (s sshRunner) Close() error { return s.c.Close() }

// opReporter reports an activation's progress through the SDK's operation.
type opReporter struct{ op *sdk.Op }

func (r opReporter) Progress(step string)            { r.op.Progress(step, -1) }
func (r opReporter) Logf(format string, args ...any) { r.op.Logf(format, args...) }

// sshDriver drives an activation over c, a connection to t: the status
// is read over new connections when c drops, and the new connection that
// confirms the system is a new SSH login with the pinned host key.
func sshDriver(op *sdk.Op, t remote.Target, c *remote.Client) activation.Driver {
	return activation.Driver{
		Host:     t.HostPort(),
		Deployer: "the deployer",
		Runner:   sshRunner{c},
		Redial: func(ctx context.Context) (activation.Conn, error) {
			nc, err := remote.Dial(ctx, t)
			if err != nil {
				return nil, err
			}
			return sshRunner{nc}, nil
		},
		Reach: activation.Reach{
			Connect: func(ctx context.Context, within time.Duration) (activation.Conn, error) {
				ctx, cancel := context.WithTimeout(ctx, within)
				defer cancel()
				nc, err := remote.WaitFor(ctx, t, within, remote.Backoff{First: 200 * time.Millisecond, Max: 2 * time.Second}, nil)
				if err != nil {
					return nil, err
				}
				return sshRunner{nc}, nil
			},
			Step:   "new SSH connection after activation",
			Missed: "no new SSH connection reached the host within confirmTimeout",
		},
		Report: opReporter{op},
	}
}

// runProbe inspects the host behind c (see activation.Inspect).
func runProbe(ctx context.Context, c *remote.Client, toplevel string, preflight bool) (activation.Probe, error) {
	return activation.Inspect(ctx, sshRunner{c}, toplevel, preflight)
}

// preflight inspects the host behind c before a change (see
// activation.Inspect with preflight), and makes sure that commands run
// as root there, which the probe tells too (remote.Client.RootFrom): one
// round trip for what took two.
func preflight(ctx context.Context, c *remote.Client, toplevel string) (activation.Probe, error) {
	p, err := runProbe(ctx, c, toplevel, true)
	if err := c.RootFrom(p.UID, err); err != nil {
		return activation.Probe{}, err
	}
	return p, nil
}
