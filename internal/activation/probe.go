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
}

// Inspect reads what the host runs and, about toplevel (may be ""),
// whether a reboot would be needed to run it; with preflight, also
// whether the host holds it, which units failed and which activation
// locks are held.
func Inspect(ctx context.Context, r Runner, toplevel string, preflight bool) (Probe, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{toplevel}
	if preflight {
		args = append(args, "preflight")
	}
	out, err := r.Run(ctx, "inspect the host", probeScript, nil, args...)
	if err != nil {
		return Probe{}, err
	}
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
		}
	}
	return p, nil
}
