// Package activation activates a NixOS system on a host under a dead-man
// switch, for the two drivers that do it: nixos.system over SSH, and the
// pull agent on its own host. A supervisor started detached on the host
// runs `switch-to-configuration test`; the driver then proves that the new
// system still lets it in over a new connection, runs the health checks
// and confirms; the supervisor re-activates the previous system on its own
// when any of that does not happen in time. Then the system becomes the
// boot default, and the previous one is put back if that fails.
//
// The drivers supply a Runner (run a script on the host), a Reporter (its
// progress) and the new connection; errors are *StepError, saying which
// step failed and what became of the host.
package activation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Driver is how an activation reaches its host.
type Driver struct {
	// Host names the host in errors and log lines ("host:port").
	Host string
	// Deployer names who confirms the new system, in errors ("the
	// deployer", "the agent").
	Deployer string
	// Runner is the connection the activation starts over; the boot
	// default is set over it too.
	Runner Runner
	// Redial opens a new connection to the host, over which the
	// supervisor's status is read once Runner failed (the new system may
	// restart sshd). Nil: Runner is used again.
	Redial func(ctx context.Context) (Conn, error)
	// Reach is the proof of a new connection after the activation.
	Reach Reach
	// Report takes the progress.
	Report Reporter
}

// Reach is how a driver proves, after `switch-to-configuration test`, that
// the new system still lets it in over a new connection: a new SSH login
// with the pinned host key, or a new signed request to the pull server.
type Reach struct {
	// Connect makes the new connection within the given time (the
	// confirmTimeout); the Conn it returns runs the rest of the
	// activation: the command checks and the confirmation.
	Connect func(ctx context.Context, within time.Duration) (Conn, error)
	// Step names it in errors: "new SSH connection after activation".
	Step string
	// Missed says it did not happen in time, in errors: "no new SSH
	// connection reached the host within confirmTimeout".
	Missed string
}

// Params are what an activation activates, and how.
type Params struct {
	// Toplevel is the new system.
	Toplevel string
	// Current and Profile are the systems the host runs and boots now
	// ("" for none), as Inspect read them.
	Current, Profile string
	// Test activates Toplevel under the dead-man switch, unless the host
	// runs it; Boot makes it the boot default, unless it is.
	Test, Boot bool
	// Checks run after `switch-to-configuration test`.
	Checks []HealthCheck
	// ActivationTimeout bounds switch-to-configuration (the new system's,
	// and the previous one's when rolling back); ConfirmTimeout is how
	// long the host waits for the new connection.
	ActivationTimeout, ConfirmTimeout time.Duration
}

// StepError is a failed step of a deployment: which, why, and what became
// of the host.
type StepError struct {
	Host string
	Step string
	Err  error
	// Outcome says what the host runs now: re-activated previous system,
	// left untouched, or the rollback's own failure.
	Outcome string
	// Log is the tail of switch-to-configuration's output, when the
	// activation got that far; the message shows it when
	// switch-to-configuration failed (Err is an *ExitError).
	Log string
}

func (e *StepError) Error() string {
	return e.Host + ": " + e.describe(true)
}

// Reason is the error without the host's name and the activation log:
// what the pull agent reports, with the log beside it.
func (e *StepError) Reason() string { return e.describe(false) }

func (e *StepError) describe(withLog bool) string {
	var exit *ExitError
	if withLog && e.Log != "" && errors.As(e.Err, &exit) {
		return fmt.Sprintf("%s failed: %v\n%s; %s", e.Step, e.Err, e.Log, e.Outcome)
	}
	return fmt.Sprintf("%s failed: %v; %s", e.Step, e.Err, e.Outcome)
}

func (e *StepError) Unwrap() error { return e.Err }

// RolledBack reports whether the host was put back on its previous system.
func (e *StepError) RolledBack() bool { return strings.HasPrefix(e.Outcome, "rolled back") }

// Unchanged reports whether the host was left as it was before the step:
// the same step may be tried again.
func (e *StepError) Unchanged() bool { return strings.HasPrefix(e.Outcome, "nothing was changed") }

// Kept reports whether the host kept the new system although the step
// failed: the supervisor took the confirmation.
func (e *StepError) Kept() bool { return strings.HasPrefix(e.Outcome, "the host kept the new system") }

// ExitError is a failed `switch-to-configuration test`.
type ExitError struct {
	Code int
	// FailedUnits is what it said failed, for exit status 4.
	FailedUnits string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("switch-to-configuration test exited with status %d: %s", e.Code, ExitMeaning(e.Code))
	if e.FailedUnits != "" {
		msg += " (" + e.FailedUnits + ")"
	}
	return msg
}

// ExitMeaning says what an exit status of switch-to-configuration means.
func ExitMeaning(code int) string {
	switch code {
	case 1:
		return "pre-switch checks, boot loader installation or its lock failed"
	case 2:
		return "the activation script failed"
	case 4:
		return "units failed"
	case 100:
		return "a reboot is needed to run this system (its init interface differs); deploy it with action = \"boot\" and reboot"
	case 124, 137:
		return "it did not finish within activationTimeout and was stopped"
	}
	return "unexpected exit status"
}

var failedUnitsLine = regexp.MustCompile(`the following units failed: ([^\n]*)`)

// Switch activates p.Toplevel under the dead-man switch (p.Test), then
// makes it the boot default (p.Boot), putting back what ran before when
// that fails.
func Switch(ctx context.Context, d Driver, p Params) error {
	_, _, err := SwitchAndProbe(ctx, d, p)
	return err
}

// SwitchAndProbe is Switch, and also returns what the host runs
// afterwards, as Inspect reads it (not preflight), when the last step
// read it in the same script: when it set the boot default (read is
// true). Otherwise the driver reads the host itself if it needs to.
func SwitchAndProbe(ctx context.Context, d Driver, p Params) (after Probe, read bool, err error) {
	boot := p.Boot && p.Profile != p.Toplevel
	if p.Test && p.Current != p.Toplevel {
		a := &activation{d: d, p: p, boot: boot}
		booted, err := a.run(ctx)
		if err != nil {
			return Probe{}, false, err
		}
		if booted != nil {
			return *booted, true, nil
		}
	}
	if boot {
		d.Report.Progress("making it the boot default")
		bctx, cancel := context.WithTimeout(ctx, p.ActivationTimeout)
		out, err := d.Runner.Run(bctx, "set the system profile and boot entry", bootScript, nil, p.Toplevel)
		cancel()
		if err != nil {
			return Probe{}, false, restore(ctx, d, p, "boot entry", err)
		}
		return parseProbe(out), true, nil
	}
	return Probe{}, false, nil
}

// restore puts back what ran before after a failure past the dead-man
// switch (setting the boot entry).
func restore(ctx context.Context, d Driver, p Params, step string, cause error) error {
	prev := p.Current
	if !p.Test {
		prev = "" // nothing was activated
	}
	rctx, cancel := context.WithTimeout(ctx, p.ActivationTimeout)
	defer cancel()
	_, err := d.Runner.Run(rctx, "restore the previous system", restoreScript, nil, prev, p.Profile)
	if err != nil {
		return &StepError{Host: d.Host, Step: step, Err: cause, Outcome: fmt.Sprintf("restoring the previous system failed too: %v", err)}
	}
	return &StepError{Host: d.Host, Step: step, Err: cause, Outcome: fmt.Sprintf("rolled back: re-activated %s, boot default %s", orNone(p.Current), orNone(p.Profile))}
}

// activation is one `switch-to-configuration test` under the host's
// dead-man switch (supervisor.sh), followed by the health checks.
type activation struct {
	d Driver
	p Params
	// boot: once the supervisor took the confirmation, the script that
	// confirmed makes the system the boot default too.
	boot bool
	dir  string
}

// pollInterval is how often the driver reads the supervisor's status
// again after a read failed or found it unchanged.
const pollInterval = 200 * time.Millisecond

// run activates the system and confirms it; when a.boot, it also makes it
// the boot default, in the confirmation's script, and returns what the
// host runs then (nil when the boot default was not set that way).
func (a *activation) run(ctx context.Context) (booted *Probe, err error) {
	host, p := a.d.Host, a.p
	a.dir = fmt.Sprintf("/run/landscaper/%s-%d", storeHash(p.Toplevel), time.Now().UnixNano())
	checkBudget := Budget(p.Checks) + 30*time.Second
	params := strings.Join([]string{
		"new=" + quote(p.Toplevel),
		"prev=" + quote(p.Current),
		"activation_timeout=" + strconv.Itoa(wholeSeconds(p.ActivationTimeout)),
		"confirm_timeout=" + strconv.Itoa(wholeSeconds(p.ConfirmTimeout)),
		"check_timeout=" + strconv.Itoa(wholeSeconds(checkBudget)),
	}, "\n")
	a.d.Report.Progress("activating " + p.Toplevel + " (test)")
	// One script starts the supervisor and waits for the activation's
	// outcome; the connection may drop (the new system may restart
	// sshd): the status is read over new ones then.
	sctx, cancel := context.WithTimeout(ctx, time.Minute+awaitTimeout)
	out, err := a.d.Runner.Run(sctx, "start the activation", startScript, nil, a.dir, params, supervisorScript)
	cancel()
	lines := linesAfter(out, startedLine)
	status := ""
	if len(lines) > 0 {
		status = strings.TrimSpace(lines[len(lines)-1])
	}
	if lines == nil {
		if err == nil {
			err = errors.New("the supervisor did not start")
		}
		return nil, &StepError{Host: host, Step: "start activation", Err: err, Outcome: "nothing was changed; the host runs " + orNone(p.Current)}
	}
	a.d.Report.Logf("activation started on %s (dead-man switch: %s to confirm, previous system %s)", host, p.ConfirmTimeout, orNone(p.Current))
	status, err = a.settle(ctx, a.d.Runner, status, err, p.ActivationTimeout+time.Minute, "activating", "")
	if err != nil {
		return nil, a.lost(ctx, "activate", err)
	}
	if status != "activated" {
		return nil, a.failure(ctx, a.d.Runner, "activate", status, nil)
	}
	a.d.Report.Logf("switch-to-configuration test succeeded on %s", host)

	// A new connection proves the new system still lets the driver in.
	c, err := a.d.Reach.Connect(ctx, p.ConfirmTimeout)
	if err != nil {
		a.d.Report.Logf("%s: %s (%s): %v; waiting for the host to roll back on its own", host, a.d.Reach.Missed, p.ConfirmTimeout, err)
		return nil, a.lost(ctx, a.d.Reach.Step, err)
	}
	defer c.Close()
	if len(p.Checks) == 0 {
		// Nothing to check: reaching the host over a new connection is
		// the confirmation.
		return a.confirm(ctx, c, checkBudget, "reached", "confirm")
	}
	if err := a.touch(ctx, c, "reached"); err != nil {
		return nil, a.lost(ctx, a.d.Reach.Step, err)
	}
	a.d.Report.Progress("running health checks")
	if err := runChecks(ctx, c, p.Checks, a.d.Report.Logf); err != nil {
		pending := []string{"reached", "activated", ""}
		status, touched, terr := a.touchAwait(ctx, c, []string{"abort"}, pending)
		if !touched {
			a.d.Report.Logf("could not ask %s to roll back now (%v); it rolls back on its own", host, terr)
		}
		status, werr := a.settle(ctx, c, status, terr, p.ActivationTimeout+Budget(p.Checks)+time.Minute, pending...)
		if werr != nil {
			return nil, a.lost(ctx, "health checks", err)
		}
		return nil, a.failure(ctx, c, "health checks", status, err)
	}
	return a.confirm(ctx, c, checkBudget, "confirm")
}

// confirm creates the named files (the last is "confirm") over the new
// connection r and waits for the supervisor to take the confirmation;
// with a.boot, the same script then makes the system the boot default
// and reads the host (booted).
func (a *activation) confirm(ctx context.Context, r Runner, checkBudget time.Duration, names ...string) (booted *Probe, err error) {
	pending := []string{"reached", "activated", ""}
	boot, name, within := "", strings.Join(names, " and "), 30*time.Second+awaitTimeout
	if a.boot {
		boot, name, within = a.p.Toplevel, "confirm, then set the system profile and boot entry", within+a.p.ActivationTimeout
		a.d.Report.Progress("confirming, then making it the boot default")
	}
	rctx, cancel := context.WithTimeout(ctx, within)
	out, err := r.Run(rctx, name, touchAwaitScript, nil, append([]string{a.dir, strings.Join(names, " "), boot}, pending...)...)
	cancel()
	lines := linesAfter(out, touchedLine)
	if lines == nil {
		return nil, a.lost(ctx, "confirm", err)
	}
	status := ""
	if len(lines) > 0 {
		status = strings.TrimSpace(lines[0])
	}
	if len(lines) > 1 && lines[1] == bootingLine {
		a.d.Report.Logf("%s confirmed %s", a.d.Host, a.p.Toplevel)
		if err != nil {
			return nil, restore(ctx, a.d, a.p, "boot entry", err)
		}
		p := parseProbe(strings.Join(lines[2:], "\n"))
		return &p, nil
	}
	status, err = a.settle(ctx, r, status, err, checkBudget+time.Minute, pending...)
	if err != nil {
		return nil, a.lost(ctx, "confirm", err)
	}
	if status != "confirmed" {
		// The supervisor's status says why it did not take the
		// confirmation (a rollback names its reason): that is the cause.
		var cause error
		if len(strings.Fields(status)) < 2 {
			cause = errors.New("the host did not take the confirmation in time")
		}
		return nil, a.failure(ctx, r, "confirm", status, cause)
	}
	a.d.Report.Logf("%s confirmed %s", a.d.Host, a.p.Toplevel)
	return nil, nil
}

// touch creates the named files in the activation's directory, in order,
// in one command: the driver's messages to the supervisor.
func (a *activation) touch(ctx context.Context, r Runner, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := r.Run(ctx, strings.Join(names, " and "), touchScript, nil, a.dir, strings.Join(names, " "))
	return err
}

// touchAwait creates the named files as touch does and then waits, in
// the same script, while the status is one of pending (as awaitStatus).
// touched says whether the files were made; status is "" when the wait
// did not end with one.
func (a *activation) touchAwait(ctx context.Context, r Runner, names, pending []string) (status string, touched bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+awaitTimeout)
	defer cancel()
	out, err := r.Run(ctx, strings.Join(names, " and "), touchAwaitScript, nil, append([]string{a.dir, strings.Join(names, " "), ""}, pending...)...)
	lines := linesAfter(out, touchedLine)
	if len(lines) > 0 {
		status = strings.TrimSpace(lines[0])
	}
	return status, lines != nil, err
}

// linesAfter is the lines of out after the line marker (empty, not nil,
// when there are none), or nil when out has no such line.
func linesAfter(out, marker string) []string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		if l == marker {
			return append([]string{}, lines[i+1:]...)
		}
	}
	return nil
}

// settle returns status when the script that read it ended well (err is
// nil) with a status none of pending; else it goes on waiting as
// waitStatus does, over r first.
func (a *activation) settle(ctx context.Context, r Runner, status string, err error, within time.Duration, pending ...string) (string, error) {
	if err == nil && status != "" && !slices.Contains(pending, status) && !strings.HasPrefix(status, "rolling-back") {
		return status, nil
	}
	return a.waitStatus(ctx, r, within, pending...)
}

// awaitTimeout bounds one await_status on the host (which gives up after
// about 20 s) with its round trip.
const awaitTimeout = 40 * time.Second

// awaitStatus returns the supervisor's status once it is none of pending,
// or after at most 20 s, whatever it is then.
func (a *activation) awaitStatus(ctx context.Context, r Runner, pending []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, awaitTimeout)
	defer cancel()
	out, err := r.Run(ctx, "read the activation status", awaitStatusScript, nil, append([]string{a.dir + "/status"}, pending...)...)
	return strings.TrimSpace(out), err
}

// waitStatus reads the status until it is none of the given ones (or is
// a rollback in progress), over r or, when r is nil or fails, new
// connections; it gives up after within.
func (a *activation) waitStatus(ctx context.Context, r Runner, within time.Duration, pending ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var fresh Conn
	defer func() {
		if fresh != nil {
			fresh.Close()
		}
	}()
	var lastErr error
	for {
		if r != nil {
			status, err := a.awaitStatus(ctx, r, pending)
			if err == nil {
				if !slices.Contains(pending, status) && !strings.HasPrefix(status, "rolling-back") {
					return status, nil
				}
			} else {
				lastErr = err
				r = nil // read over a new connection from now on
			}
		} else {
			nc, err := a.redial(ctx)
			if err == nil {
				if fresh != nil {
					fresh.Close()
				}
				fresh, r = nc, nc
				continue
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return "", fmt.Errorf("no outcome after %s: %w", within, lastErr)
		case <-time.After(pollInterval):
		}
	}
}

// redial opens a new connection to the host, within 10 s; without a
// Redial, the driver's Runner serves again.
func (a *activation) redial(ctx context.Context) (Conn, error) {
	if a.d.Redial == nil {
		return nopCloser{a.d.Runner}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return a.d.Redial(ctx)
}

type nopCloser struct{ Runner }

func (nopCloser) Close() error { return nil }

// lost handles a failure after which the driver cannot tell the
// supervisor anything: the host rolls back on its own; wait for that and
// report it.
func (a *activation) lost(ctx context.Context, step string, cause error) error {
	within := a.p.ConfirmTimeout + Budget(a.p.Checks) + a.p.ActivationTimeout + 2*time.Minute
	status, err := a.waitStatus(ctx, nil, within, "activating", "activated", "reached", "")
	if err != nil {
		return &StepError{Host: a.d.Host, Step: step, Err: cause, Outcome: fmt.Sprintf("the host's state is unknown: %v", err)}
	}
	return a.failure(ctx, nil, step, status, cause)
}

// failure turns the supervisor's final status into the error to report,
// reading the host over r (nil: a new connection). Statuses: "rolled-back
// REASON RC", "failed REASON no-previous", "busy", "confirmed" (only when
// a rollback was expected but did not happen), "gone STATUS" (the
// supervisor ended without a result).
func (a *activation) failure(ctx context.Context, r Runner, step, status string, cause error) error {
	host, prev := a.d.Host, a.p.Current
	fields := strings.Fields(status)
	if len(fields) == 0 {
		return &StepError{Host: host, Step: step, Err: cause, Outcome: "the host's state is unknown (no status)"}
	}
	if fields[0] == "busy" {
		return &StepError{Host: host, Step: step, Err: errors.New("another activation is in progress"), Outcome: "nothing was changed"}
	}
	log := a.read(ctx, r, "read the activation log", activationLogScript, a.dir)
	if fields[0] == "gone" {
		return &StepError{Host: host, Step: step, Log: log,
			Err:     fmt.Errorf("the activation supervisor on the target ended without a result (killed, or it could not run) while its status was %q; its output: journalctl -u landscaper-activate-%s, or %s/supervisor.log", strings.Join(fields[1:], " "), path.Base(a.dir), a.dir),
			Outcome: "the host's state is unknown: the host runs " + orNone(a.read(ctx, r, "read the current system", currentSystemScript)) + " (it ran " + orNone(prev) + " before); its boot default is unchanged"}
	}
	reason := ""
	if len(fields) > 1 {
		reason = fields[1]
	}
	if cause == nil {
		cause = a.describeReason(reason, log)
	}
	switch fields[0] {
	case "confirmed":
		return &StepError{Host: host, Step: step, Err: cause, Log: log, Outcome: "the host kept the new system " + a.p.Toplevel + " (it was confirmed); its boot default is unchanged"}
	case "failed":
		return &StepError{Host: host, Step: step, Err: cause, Log: log, Outcome: "there was no previous system to re-activate; the host is left as the failed activation left it"}
	case "rolled-back":
		rc := "0"
		if len(fields) > 2 {
			rc = fields[2]
		}
		if rc != "0" {
			return &StepError{Host: host, Step: step, Err: cause, Log: log, Outcome: fmt.Sprintf("re-activating the previous system %s failed too (switch-to-configuration exit %s); the host needs attention", orNone(prev), rc)}
		}
		return &StepError{Host: host, Step: step, Err: cause, Log: log, Outcome: "rolled back: re-activated the previous system " + orNone(prev) + "; the boot default is unchanged"}
	}
	return &StepError{Host: host, Step: step, Err: cause, Log: log, Outcome: "unexpected activation status " + status}
}

// describeReason explains the supervisor's reason for rolling back; log
// is the tail of switch-to-configuration's output.
func (a *activation) describeReason(reason, log string) error {
	switch {
	case strings.HasPrefix(reason, "exit-"):
		code, _ := strconv.Atoi(strings.TrimPrefix(reason, "exit-"))
		e := &ExitError{Code: code}
		if m := failedUnitsLine.FindStringSubmatch(log); code == 4 && m != nil {
			e.FailedUnits = strings.TrimSpace(m[1])
		}
		return e
	case reason == "no-new-connection":
		return fmt.Errorf("%s (%s) after the activation", a.d.Reach.Missed, a.p.ConfirmTimeout)
	case reason == "not-confirmed":
		return fmt.Errorf("%s did not confirm the new system in time", a.d.Deployer)
	case reason == "abort":
		return fmt.Errorf("%s asked for a rollback", a.d.Deployer)
	}
	return fmt.Errorf("activation ended with %q", reason)
}

// read runs a short script over r, or over a new connection when r is
// nil, and returns its output, "" on any failure.
func (a *activation) read(ctx context.Context, r Runner, name, script string, args ...string) string {
	if r == nil {
		nc, err := a.redial(ctx)
		if err != nil {
			return ""
		}
		defer nc.Close()
		r = nc
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, _ := r.Run(rctx, name, script, nil, args...)
	return strings.TrimSpace(out)
}

// storeHash is the hash part of a store path's name.
func storeHash(p string) string {
	base := path.Base(p)
	if h, _, ok := strings.Cut(base, "-"); ok {
		return h
	}
	return base
}

// wholeSeconds rounds a duration up to whole seconds, at least 1.
func wholeSeconds(d time.Duration) int {
	return int(math.Max(1, math.Ceil(d.Seconds())))
}

// quote quotes s for sh.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
