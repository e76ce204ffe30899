package nixos

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// activation is one `switch-to-configuration test` under the target's
// dead-man switch (supervisor.sh), followed by the health checks.
type activation struct {
	in     systemInputs
	op     *sdk.Op
	target remote.Target
	checks []healthCheck
	prev   string
	dir    string
}

// pollInterval is how often the deployer reads the supervisor's status.
const pollInterval = 200 * time.Millisecond

// exitMeaning says what an exit status of switch-to-configuration means.
func exitMeaning(code int) string {
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

func (a *activation) run(ctx context.Context, c *remote.Client) error {
	host := a.target.HostPort()
	a.dir = fmt.Sprintf("/run/landscaper/%s-%d", storeHash(a.in.Toplevel), time.Now().UnixNano())
	checkBudget := budget(a.checks) + 30*time.Second
	params := strings.Join([]string{
		"new=" + remote.Quote(a.in.Toplevel),
		"prev=" + remote.Quote(a.prev),
		"activation_timeout=" + strconv.Itoa(wholeSeconds(seconds(a.in.ActivationTimeout))),
		"confirm_timeout=" + strconv.Itoa(wholeSeconds(seconds(a.in.ConfirmTimeout))),
		"check_timeout=" + strconv.Itoa(wholeSeconds(checkBudget)),
	}, "\n")
	a.op.Progress("activating "+a.in.Toplevel+" (test)", -1)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := c.Run(sctx, "start the activation", "set -- "+remote.Quote(a.dir)+" "+remote.Quote(params)+"\n"+startScript, strings.NewReader(supervisorScript))
	cancel()
	if err != nil {
		return &StepError{Host: host, Step: "start activation", Err: err, Outcome: "nothing was changed; the host runs " + orNone(a.prev)}
	}
	a.op.Logf("activation started on %s (dead-man switch: %s to confirm, previous system %s)", host, seconds(a.in.ConfirmTimeout), orNone(a.prev))

	// The activation runs; wait for its outcome. The connection may drop
	// (the new system may restart sshd): read over new ones then.
	status, err := a.waitStatus(ctx, c, seconds(a.in.ActivationTimeout)+time.Minute, "activating", "")
	if err != nil {
		return a.lost(ctx, "activate", err)
	}
	if status != "activated" {
		return a.failure(ctx, c, "activate", status, nil)
	}
	a.op.Logf("switch-to-configuration test succeeded on %s", host)

	// A new connection proves the new system still lets us in.
	nctx, cancel := context.WithTimeout(ctx, seconds(a.in.ConfirmTimeout))
	c2, err := remote.WaitFor(nctx, a.target, seconds(a.in.ConfirmTimeout), remote.Backoff{First: 200 * time.Millisecond, Max: 2 * time.Second}, nil)
	cancel()
	if err != nil {
		a.op.Logf("no new SSH connection to %s within confirmTimeout: %v; waiting for the host to roll back on its own", host, err)
		return a.lost(ctx, "new SSH connection after activation", err)
	}
	defer c2.Close()
	if len(a.checks) == 0 {
		// Nothing to check: reaching the host over a new connection is
		// the confirmation.
		if err := a.touch(ctx, c2, "reached", "confirm"); err != nil {
			return a.lost(ctx, "confirm", err)
		}
		return a.awaitConfirmed(ctx, c2, checkBudget)
	}
	if err := a.touch(ctx, c2, "reached"); err != nil {
		return a.lost(ctx, "new SSH connection after activation", err)
	}
	a.op.Progress("running health checks", -1)
	if err := runChecks(ctx, c2, a.checks, a.op.Logf); err != nil {
		if terr := a.touch(ctx, c2, "abort"); terr != nil {
			a.op.Logf("could not ask %s to roll back now (%v); it rolls back on its own", host, terr)
		}
		status, werr := a.waitStatus(ctx, c2, seconds(a.in.ActivationTimeout)+budget(a.checks)+time.Minute, "reached", "activated", "")
		if werr != nil {
			return a.lost(ctx, "health checks", err)
		}
		return a.failure(ctx, c2, "health checks", status, err)
	}
	if err := a.touch(ctx, c2, "confirm"); err != nil {
		return a.lost(ctx, "confirm", err)
	}
	return a.awaitConfirmed(ctx, c2, checkBudget)
}

// awaitConfirmed waits for the supervisor to take the confirmation.
func (a *activation) awaitConfirmed(ctx context.Context, c *remote.Client, checkBudget time.Duration) error {
	status, err := a.waitStatus(ctx, c, checkBudget+time.Minute, "reached", "activated", "")
	if err != nil {
		return a.lost(ctx, "confirm", err)
	}
	if status != "confirmed" {
		// The supervisor's status says why it did not take the
		// confirmation (a rollback names its reason): that is the cause.
		var cause error
		if len(strings.Fields(status)) < 2 {
			cause = errors.New("the host did not take the confirmation in time")
		}
		return a.failure(ctx, c, "confirm", status, cause)
	}
	a.op.Logf("%s confirmed %s", a.target.HostPort(), a.in.Toplevel)
	return nil
}

// storeHash is the hash part of a store path's name.
func storeHash(p string) string {
	base := path.Base(p)
	if h, _, ok := strings.Cut(base, "-"); ok {
		return h
	}
	return base
}

// touch creates the named files in the activation's directory, in order,
// in one command.
func (a *activation) touch(ctx context.Context, c *remote.Client, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var paths []string
	for _, n := range names {
		paths = append(paths, remote.Quote(a.dir+"/"+n))
	}
	_, err := c.Run(ctx, strings.Join(names, " and "), "touch "+strings.Join(paths, " "), nil)
	return err
}

// awaitStatusScript waits on the target, up to 20 s, while the status file
// ($1) holds one of the other arguments or a rollback is in progress, and
// prints the status then: the deployer learns of a change within 50 ms
// without a round trip per look (the look is the shell's own read, not a
// program started 20 times a second). A pending status while nobody holds
// the supervisor's lock (it holds it as long as it lives; checked once a
// second) means the supervisor is gone without a result (killed, or it
// could not run): that prints "gone <status>". The status is read again
// after the lock was found free, since a supervisor writes its result
// before it exits; an absent status counts only once the supervisor was
// written 10 s ago (it may not have taken the lock yet).
const awaitStatusScript = `f="$1"
shift
dir=${f%/*}
pending() {
	for p in "$@"; do if [ "$s" = "$p" ]; then return 0; fi; done
	case "$s" in rolling-back*) return 0 ;; esac
	return 1
}
i=0
while [ "$i" -lt 400 ]; do
	s=
	{ read -r s <"$f"; } 2>/dev/null
	pending "$@" || break
	if [ $((i % 20)) -eq 19 ]; then
		if [ -n "$s" ] || [ $(($(date +%s) - $(stat -c %Y "$dir/supervisor.sh" 2>/dev/null || date +%s))) -ge 10 ]; then
			if flock -n /run/landscaper/lock true 2>/dev/null; then
				s=
				{ read -r s <"$f"; } 2>/dev/null
				if pending "$@"; then s="gone $s"; fi
				break
			fi
		fi
	fi
	sleep 0.05
	i=$((i + 1))
done
printf '%s\n' "$s"
`

// awaitStatus returns the supervisor's status once it is none of pending,
// or after at most 20 s, whatever it is then.
func (a *activation) awaitStatus(ctx context.Context, c *remote.Client, pending []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	args := []string{remote.Quote(a.dir + "/status")}
	for _, p := range pending {
		args = append(args, remote.Quote(p))
	}
	res, err := c.Run(ctx, "read the activation status", "set -- "+strings.Join(args, " ")+"\n"+awaitStatusScript, nil)
	return strings.TrimSpace(res.Stdout), err
}

// waitStatus reads the status until it is none of the given ones (or is
// a rollback in progress), over c or, when c fails, new connections; it
// gives up after within.
func (a *activation) waitStatus(ctx context.Context, c *remote.Client, within time.Duration, pending ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var fresh *remote.Client
	defer func() {
		if fresh != nil {
			fresh.Close()
		}
	}()
	var lastErr error
	for {
		if c != nil {
			status, err := a.awaitStatus(ctx, c, pending)
			if err == nil {
				if !slices.Contains(pending, status) && !strings.HasPrefix(status, "rolling-back") {
					return status, nil
				}
			} else {
				lastErr = err
				c = nil // read over a new connection from now on
			}
		} else {
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			nc, err := remote.Dial(dctx, a.target)
			dcancel()
			if err == nil {
				fresh, c = nc, nc
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

// lost handles a failure after which the deployer cannot tell the
// supervisor anything: the host rolls back on its own; wait for that and
// report it.
func (a *activation) lost(ctx context.Context, step string, cause error) error {
	within := seconds(a.in.ConfirmTimeout) + budget(a.checks) + seconds(a.in.ActivationTimeout) + 2*time.Minute
	status, err := a.waitStatus(ctx, nil, within, "activating", "activated", "reached", "")
	if err != nil {
		return &StepError{Host: a.target.HostPort(), Step: step, Err: cause, Outcome: fmt.Sprintf("the host's state is unknown: %v", err)}
	}
	return a.failure(ctx, nil, step, status, cause)
}

// failure turns the supervisor's final status into the error to report.
// Statuses: "rolled-back REASON RC", "failed REASON no-previous", "busy",
// "confirmed" (only when a rollback was expected but did not happen).
func (a *activation) failure(ctx context.Context, c *remote.Client, step, status string, cause error) error {
	host := a.target.HostPort()
	fields := strings.Fields(status)
	if len(fields) == 0 {
		return &StepError{Host: host, Step: step, Err: cause, Outcome: "the host's state is unknown (no status)"}
	}
	if fields[0] == "gone" {
		return &StepError{Host: host, Step: step,
			Err:     fmt.Errorf("the activation supervisor on the target ended without a result (killed, or it could not run) while its status was %q; its output: journalctl -u landscaper-activate-%s, or %s/supervisor.log", strings.Join(fields[1:], " "), path.Base(a.dir), a.dir),
			Outcome: "the host's state is unknown: the host runs " + orNone(a.currentSystem(ctx, c)) + " (it ran " + orNone(a.prev) + " before); its boot default is unchanged"}
	}
	reason := ""
	if len(fields) > 1 {
		reason = fields[1]
	}
	if cause == nil {
		cause = a.describeReason(ctx, c, reason)
	}
	switch fields[0] {
	case "busy":
		return &StepError{Host: host, Step: step, Err: errors.New("another activation is in progress"), Outcome: "nothing was changed"}
	case "confirmed":
		return &StepError{Host: host, Step: step, Err: cause, Outcome: "the host kept the new system " + a.in.Toplevel + " (it was confirmed); its boot default is unchanged"}
	case "failed":
		return &StepError{Host: host, Step: step, Err: cause, Outcome: "there was no previous system to re-activate; the host is left as the failed activation left it"}
	case "rolled-back":
		rc := "0"
		if len(fields) > 2 {
			rc = fields[2]
		}
		if rc != "0" {
			return &StepError{Host: host, Step: step, Err: cause, Outcome: fmt.Sprintf("re-activating the previous system %s failed too (switch-to-configuration exit %s); the host needs attention", orNone(a.prev), rc)}
		}
		return &StepError{Host: host, Step: step, Err: cause, Outcome: "rolled back: re-activated the previous system " + orNone(a.prev) + "; the boot default is unchanged"}
	}
	return &StepError{Host: host, Step: step, Err: cause, Outcome: "unexpected activation status " + status}
}

// describeReason explains the supervisor's reason for rolling back, with
// switch-to-configuration's output when it failed.
func (a *activation) describeReason(ctx context.Context, c *remote.Client, reason string) error {
	switch {
	case strings.HasPrefix(reason, "exit-"):
		code, _ := strconv.Atoi(strings.TrimPrefix(reason, "exit-"))
		msg := fmt.Sprintf("switch-to-configuration test exited with status %d: %s", code, exitMeaning(code))
		log := a.activationLog(ctx, c)
		if m := failedUnitsLine.FindStringSubmatch(log); code == 4 && m != nil {
			msg += " (" + strings.TrimSpace(m[1]) + ")"
		}
		if log != "" {
			msg += "\n" + log
		}
		return errors.New(msg)
	case reason == "no-new-connection":
		return fmt.Errorf("no new SSH connection reached the host within confirmTimeout (%s) after the activation", seconds(a.in.ConfirmTimeout))
	case reason == "not-confirmed":
		return errors.New("the deployer did not confirm the new system in time")
	case reason == "abort":
		return errors.New("the deployer asked for a rollback")
	}
	return fmt.Errorf("activation ended with %q", reason)
}

// activationLog is the tail of switch-to-configuration's output.
func (a *activation) activationLog(ctx context.Context, c *remote.Client) string {
	return a.read(ctx, c, "read the activation log", "tail -n 20 "+remote.Quote(a.dir+"/activate.log")+" 2>/dev/null || true")
}

// currentSystem is what /run/current-system points at now, "" when that
// cannot be read.
func (a *activation) currentSystem(ctx context.Context, c *remote.Client) string {
	return a.read(ctx, c, "read the current system", "if [ -e /run/current-system ]; then readlink -f /run/current-system; fi")
}

// read runs a short command over c, or over a new connection when c is
// nil, and returns its output, "" on any failure.
func (a *activation) read(ctx context.Context, c *remote.Client, name, script string) string {
	if c == nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nc, err := remote.Dial(dctx, a.target)
		cancel()
		if err != nil {
			return ""
		}
		defer nc.Close()
		c = nc
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, _ := c.Run(rctx, name, script, nil)
	return strings.TrimSpace(res.Stdout)
}
