package nixos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// Values of nixos.system's reboot input.
const (
	rebootNever    = "never"
	rebootIfNeeded = "ifNeeded"
	rebootAlways   = "always"
)

// rebootScript reboots the machine a moment after this session ends.
const rebootScript = `set -eu
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	setsid -f sh -c 'sleep 1; systemctl reboot || reboot -f' </dev/null >/dev/null 2>&1
else
	setsid -f sh -c 'sleep 1; sync; reboot -f || echo b >/proc/sysrq-trigger' </dev/null >/dev/null 2>&1
fi
`

// bootIDScript prints the kernel's boot ID, which changes at every boot.
const bootIDScript = `cat /proc/sys/kernel/random/boot_id`

// rebootAndWait reboots the host behind c, then waits until the host
// answers SSH again with the same pinned key from a new boot (its boot ID
// changed), within timeout in all; it returns the new connection. The old
// connection is not waited on: a host that reboots does not close it (no
// RST reaches the deployer), so it would hang until a keepalive gave up.
func rebootAndWait(ctx context.Context, op *sdk.Op, c *remote.Client, timeout time.Duration) (*remote.Client, error) {
	t := c.Target()
	op.Progress("rebooting "+t.HostPort(), -1)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bootID, err := readBootID(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("read the boot ID before the reboot: %w", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	_, err = c.Run(rctx, "reboot", rebootScript, nil)
	rcancel()
	c.Close()
	var exit *remote.ExitError
	switch {
	case errors.As(err, &exit):
		return nil, fmt.Errorf("start the reboot: %w", err)
	case err != nil:
		// The connection went before the script's exit status came back:
		// the reboot it schedules a second later may have begun anyway
		// (a loaded machine). The boot ID below tells.
		op.Logf("%s: the reboot command's answer was lost (%v); waiting for a new boot", t.HostPort(), err)
	}
	op.Progress(fmt.Sprintf("waiting for %s to come back (up to %s)", t.HostPort(), timeout), -1)
	for {
		nc, err := remote.WaitFor(ctx, t, 30*time.Second, remote.DefaultBackoff, nil)
		if err != nil {
			var mismatch *remote.HostKeyMismatchError
			if errors.As(err, &mismatch) {
				return nil, fmt.Errorf("%s came back presenting another host key: %w", t.HostPort(), err)
			}
			return nil, fmt.Errorf("%s did not come back within %s: %w", t.HostPort(), timeout, err)
		}
		id, err := readBootID(ctx, nc)
		if err == nil && id != bootID {
			op.Logf("%s is back from the reboot", t.HostPort())
			return nc, nil
		}
		// Still the old boot (the reboot has not begun), or going down.
		nc.Close()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not reboot within %s: %w", t.HostPort(), timeout, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func readBootID(ctx context.Context, c *remote.Client) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := c.Run(ctx, "read the boot ID", bootIDScript, nil)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(res.Stdout)
	if id == "" {
		return "", errors.New("empty boot ID")
	}
	return id, nil
}
