package activation

import (
	"context"
	"strings"
	"time"
)

// Probe is what Inspect found on a host.
type Probe struct {
	// Current, Profile and Booted are where /run/current-system, the
	// system profile and /run/booted-system lead ("" when nowhere).
	Current, Profile, Booted string
	// Present: the host's store holds the new system, complete (read
	// with preflight only).
	Present bool
	// Reboot: the new system's kernel, initrd or kernel modules differ
	// from the booted ones.
	Reboot bool
	// FailedUnits are the units systemd reports failed, and Busy the
	// activation locks held (read with preflight only).
	FailedUnits, Busy []string
	// UID is the user ID the probe ran as ("0": root; read with
	// preflight only, else "").
	UID string
}

// Inspect reads what the host runs and, about toplevel (may be ""),
// whether a reboot would be needed to run it; with preflight, also
// whether the host holds it, which units failed, which activation locks
// are held, and the user ID it ran as.
func Inspect(ctx context.Context, r Runner, toplevel string, preflight bool) (Probe, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{toplevel}
	if preflight {
		args = append(args, "preflight")
	}
	out, err := r.Run(ctx, "inspect the host", probeScript, nil, args...)
	// On an error, what the probe printed before it: a driver tells
	// from UID whether the probe ran at all (sudo may have refused it).
	return parseProbe(out), err
}

// parseProbe reads probe's key=value lines.
func parseProbe(out string) Probe {
	var p Probe
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "current":
			p.Current = v
		case "profile":
			p.Profile = v
		case "booted":
			p.Booted = v
		case "present":
			p.Present = v == "1"
		case "reboot":
			p.Reboot = true
		case "failed":
			p.FailedUnits = append(p.FailedUnits, v)
		case "busy":
			p.Busy = append(p.Busy, v)
		case "uid":
			p.UID = v
		}
	}
	return p
}
