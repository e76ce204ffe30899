package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/pull/nixcache"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pulldir"
	"github.com/landscaper-nix/landscaper/providers/nixos"
)

// statusPoll is how often the agent reads the supervisor's status.
const statusPoll = 50 * time.Millisecond

// activate runs `switch-to-configuration test` of the desired system
// under the nixos provider's supervisor (the dead-man switch), then
// reaches the server over a new connection, runs the health checks and
// confirms. The supervisor runs detached from the agent: if the agent
// dies, or cannot reach the server within confirmTimeout, the supervisor
// re-activates prev on its own.
func (a *Agent) activate(ctx context.Context, d *pulldir.Desired, prev string) outcome {
	dir := fmt.Sprintf("/run/landscaper/%s-%d", nixcache.HashPart(d.Toplevel), time.Now().UnixNano())
	checkBudget := budget(d.HealthChecks) + 30*time.Second
	params := strings.Join([]string{
		"new=" + shellQuote(d.Toplevel),
		"prev=" + shellQuote(prev),
		"activation_timeout=" + strconv.Itoa(wholeSeconds(seconds(d.ActivationTimeout))),
		"confirm_timeout=" + strconv.Itoa(wholeSeconds(seconds(d.ConfirmTimeout))),
		"check_timeout=" + strconv.Itoa(wholeSeconds(checkBudget)),
	}, "\n")
	scripts := nixos.Scripts()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	out, err := runScript(sctx, scripts.Start, []byte(scripts.Supervisor), dir, params)
	cancel()
	if err != nil {
		return outcome{result: pulldir.ResultFailed, reason: fmt.Sprintf("start the activation: %v: %s", err, tail(out)), retry: true}
	}
	a.log.Info("activation started", "toplevel", d.Toplevel, "previous", orNone(prev), "confirm_timeout", seconds(d.ConfirmTimeout))
	status := waitStatus(ctx, dir, seconds(d.ActivationTimeout)+time.Minute, "activating", "")
	if status != "activated" {
		return ended(dir, status, prev, nil)
	}
	lost := func(cause error) outcome {
		within := seconds(d.ConfirmTimeout) + checkBudget + seconds(d.ActivationTimeout) + time.Minute
		return ended(dir, waitStatus(ctx, dir, within, "activated", "reached", ""), prev, cause)
	}
	if err := a.confirmWithin(ctx, seconds(d.ConfirmTimeout)-time.Second); err != nil {
		a.log.Warn("cannot reach the server over a new connection after the activation; the supervisor rolls back", "error", err)
		return lost(fmt.Errorf("the host could not reach the server over a new connection within confirmTimeout (%s) after the activation: %w", seconds(d.ConfirmTimeout), err))
	}
	if err := touch(dir, "reached"); err != nil {
		return lost(err)
	}
	if err := a.runChecks(ctx, d.HealthChecks); err != nil {
		_ = touch(dir, "abort")
		return lost(err)
	}
	if err := touch(dir, "confirm"); err != nil {
		return lost(err)
	}
	status = waitStatus(ctx, dir, checkBudget+time.Minute, "reached", "activated", "")
	if status != "confirmed" {
		return ended(dir, status, prev, errors.New("the supervisor did not take the confirmation in time"))
	}
	a.log.Info("activation confirmed", "toplevel", d.Toplevel)
	return outcome{result: pulldir.ResultActivated}
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

// waitStatus reads the supervisor's status until it is none of pending
// (nor a rollback in progress), or within has passed; it returns the
// status then.
func waitStatus(ctx context.Context, dir string, within time.Duration, pending ...string) string {
	deadline := time.Now().Add(within)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "status"))
		s := strings.TrimSpace(string(b))
		if !slices.Contains(pending, s) && !strings.HasPrefix(s, "rolling-back") {
			return s
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return s
		}
		select {
		case <-ctx.Done():
		case <-time.After(statusPoll):
		}
	}
}

// ended turns the supervisor's final status into the outcome to report.
// Statuses: "rolled-back REASON RC", "failed REASON no-previous", "busy",
// "confirmed" (a rollback was expected).
func ended(dir, status, prev string, cause error) outcome {
	log := readTail(filepath.Join(dir, "activate.log"))
	fields := strings.Fields(status)
	if len(fields) == 0 {
		return outcome{result: pulldir.ResultFailed, reason: "the activation's state is unknown (no status from the supervisor)", log: log}
	}
	reason := ""
	if len(fields) > 1 {
		reason = fields[1]
	}
	why := describe(reason, log)
	if cause != nil {
		why = cause.Error()
	}
	switch fields[0] {
	case "busy":
		return outcome{result: pulldir.ResultFailed, reason: "another activation is in progress; nothing was changed", retry: true}
	case "confirmed":
		return outcome{result: pulldir.ResultActivated}
	case "failed":
		return outcome{result: pulldir.ResultFailed, reason: why + "; there was no previous system to re-activate", log: log}
	case "rolled-back":
		if len(fields) > 2 && fields[2] != "0" {
			return outcome{result: pulldir.ResultFailed, reason: fmt.Sprintf("%s; re-activating the previous system %s failed too (exit %s)", why, orNone(prev), fields[2]), log: log}
		}
		return outcome{result: pulldir.ResultRolledBack, reason: why + "; re-activated the previous system " + orNone(prev), log: log}
	}
	return outcome{result: pulldir.ResultFailed, reason: "unexpected activation status " + status, log: log}
}

// describe explains the supervisor's reason for a rollback.
func describe(reason, log string) string {
	switch {
	case strings.HasPrefix(reason, "exit-"):
		code, _ := strconv.Atoi(strings.TrimPrefix(reason, "exit-"))
		return fmt.Sprintf("switch-to-configuration test exited with status %d: %s", code, nixos.ExitMeaning(code))
	case reason == "no-new-connection":
		return "the host could not reach the server over a new connection within confirmTimeout after the activation"
	case reason == "not-confirmed":
		return "the health checks did not finish in time"
	case reason == "abort":
		return "a health check failed"
	}
	return fmt.Sprintf("activation ended with %q", reason)
}

func readTail(p string) string {
	b, _ := os.ReadFile(p)
	return tail(string(b))
}

func touch(dir, name string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("tell the supervisor %s: %w", name, err)
	}
	return f.Close()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// budget is the longest the checks can take, one after the other.
func budget(checks []pulldir.HealthCheck) time.Duration {
	var d time.Duration
	for _, h := range checks {
		d += time.Duration(h.Retries+1) * (seconds(h.Timeout) + seconds(h.Interval))
	}
	return d
}

// runChecks runs each check until it passes or its tries are used up;
// the first that never passes is the error.
func (a *Agent) runChecks(ctx context.Context, checks []pulldir.HealthCheck) error {
	for _, h := range checks {
		name := h.Command
		if h.URL != "" {
			name = "GET " + h.URL
		}
		var err error
		for try := 0; try <= h.Retries; try++ {
			if try > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(seconds(h.Interval)):
				}
			}
			if err = runCheck(ctx, h); err == nil {
				a.log.Info("health check passed", "check", name)
				break
			}
			a.log.Warn("health check failed", "check", name, "try", try+1, "of", h.Retries+1, "error", err)
		}
		if err != nil {
			return fmt.Errorf("health check %q failed %d times: %w", name, h.Retries+1, err)
		}
	}
	return nil
}

func runCheck(ctx context.Context, h pulldir.HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, max(seconds(h.Timeout), 100*time.Millisecond))
	defer cancel()
	if h.Command != "" {
		out, err := runScript(ctx, h.Command, nil)
		if err != nil {
			return fmt.Errorf("%w: %s", err, tail(out))
		}
		return nil
	}
	return nixos.FetchHealthURL(ctx, h.URL)
}
