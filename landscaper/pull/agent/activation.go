package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/activation"
)

// activate activates the desired system as nixos.system does (package
// activation): `switch-to-configuration test` under the supervisor (the
// dead-man switch), then the agent reaches the server over a new
// connection, runs the health checks and confirms; then the system
// becomes the boot default, the previous one put back if that fails. The
// supervisor runs detached from the agent: if the agent dies, or cannot
// reach the server within confirmTimeout, it re-activates the previous
// system on its own.
func (a *Agent) activate(ctx context.Context, d *pulldir.Desired, pre probe) outcome {
	checks := make([]activation.HealthCheck, len(d.HealthChecks))
	for i, h := range d.HealthChecks {
		checks[i] = activation.HealthCheck{Command: h.Command, URL: h.URL, Timeout: max(seconds(h.Timeout), 100*time.Millisecond), Retries: h.Retries, Interval: seconds(h.Interval)}
	}
	err := activation.Switch(ctx, a.driver(), activation.Params{
		Toplevel: d.Toplevel, Current: pre.current, Profile: pre.profile,
		Test: true, Boot: true,
		Checks:            checks,
		ActivationTimeout: seconds(d.ActivationTimeout),
		ConfirmTimeout:    seconds(d.ConfirmTimeout),
	})
	return outcomeOf(err)
}

// driver drives the activation on this host: scripts run in a local
// shell, and the new connection is a new signed request to the server.
func (a *Agent) driver() activation.Driver {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "this host"
	}
	return activation.Driver{
		Host:     host,
		Deployer: "the agent",
		Runner:   activation.Local{},
		Reach: activation.Reach{
			Connect: func(ctx context.Context, within time.Duration) (activation.Conn, error) {
				// A second short of the supervisor's window, so that the
				// answer is not taken after the supervisor gave up.
				if err := a.confirmWithin(ctx, within-time.Second); err != nil {
					return nil, err
				}
				return activation.Local{}, nil
			},
			Step:   "new connection to the server after activation",
			Missed: "the host could not reach the server over a new connection within confirmTimeout",
		},
		Report: logReporter{a.log},
	}
}

// confirmWithin tries to reach the server over a new connection until it
// answers, signed, or within has passed.
func (a *Agent) confirmWithin(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(within, time.Second))
	defer cancel()
	var err error
	for {
		tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
		err = a.client.Confirm(tctx)
		tcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// outcomeOf is the outcome to report for the activation's error.
func outcomeOf(err error) outcome {
	if err == nil {
		return outcome{result: pulldir.ResultActivated}
	}
	var se *activation.StepError
	if !errors.As(err, &se) {
		return outcome{result: pulldir.ResultFailed, reason: err.Error()}
	}
	o := outcome{result: pulldir.ResultFailed, reason: se.Reason(), log: se.Log}
	switch {
	case se.Kept():
		// The supervisor took the confirmation although the agent could
		// not see it: the host runs the new system.
		o.result = pulldir.ResultActivated
	case se.RolledBack():
		o.result = pulldir.ResultRolledBack
	case se.Unchanged():
		o.retry = true
	}
	return o
}

// logReporter reports an activation's progress in the agent's log.
type logReporter struct{ log *slog.Logger }

func (r logReporter) Progress(step string) { r.log.Info(step) }

func (r logReporter) Logf(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) }
