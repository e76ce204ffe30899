package nixos

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/internal/activation"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

type systemInputs struct {
	connection
	HostPublicKey           string           `json:"hostPublicKey"`
	Toplevel                string           `json:"toplevel"`
	Action                  string           `json:"action"`
	HealthChecks            []healthCheckDef `json:"healthChecks"`
	ConfirmTimeout          float64          `json:"confirmTimeout"`
	ActivationTimeout       float64          `json:"activationTimeout"`
	CopyTimeout             float64          `json:"copyTimeout"`
	SubstituteOnDestination bool             `json:"substituteOnDestination"`
	Sudo                    *bool            `json:"sudo"`
	Reboot                  string           `json:"reboot"`
	RebootTimeout           float64          `json:"rebootTimeout"`
}

type systemOutputs struct {
	Toplevel    string `json:"toplevel"`
	Previous    string `json:"previous"`
	NeedsReboot bool   `json:"needsReboot"`
	Current     string `json:"current"`
	Profile     string `json:"profile"`
	Booted      string `json:"booted"`
}

const (
	actionSwitch = "switch"
	actionTest   = "test"
	actionBoot   = "boot"
)

// systemType is nixos.system; pool carries a refresh's connection to the
// create or update of the same host that follows it (nil: none kept).
func systemType(pool *connPool) *sdk.Type[systemInputs, systemOutputs] {
	inputs := append(connectionAttrs(),
		sdk.String("hostPublicKey", `The host key the target must present ("ssh-ed25519 AAAA...", e.g. nixos.host-key's hostPublicKey). Strict host key checking always; no trust on first use.`).Required(),
		sdk.String("toplevel", "The system's store path (config.system.build.toplevel). Its derivation is built before the apply.").Required(),
		sdk.String("action", `"switch": activate with test, run the health checks, then make it the boot default; "test": activate and check, leave the boot default; "boot": only make it the boot default.`).Default(actionSwitch),
		healthChecksAttr(systemChecksDoc),
		sdk.Number("confirmTimeout", "Seconds the target waits, after activating, for a new SSH connection from the deployer before it re-activates the previous system on its own.").Default(30),
		sdk.Number("activationTimeout", "Seconds switch-to-configuration may take (the new system's, and the previous one's when rolling back).").Default(600),
		sdk.Number("copyTimeout", "Seconds the closure copy (nix copy) may take.").Default(1200),
		sdk.Bool("substituteOnDestination", "Let the target fetch store paths from its own binary caches (nix copy --substitute-on-destination).").Default(false),
		sdk.Bool("sudo", `Run commands, and nix copy's nix-daemon on the target, as root through "sudo -n" (passwordless sudo needed); by default when user is not "root". Without it the login user must be root: commands that would not run as root are refused before anything changes.`),
		sdk.String("reboot", `After the system became the boot default: "never" reboot; "ifNeeded": reboot when its kernel, initrd or kernel modules differ from the booted ones; "always": reboot after every change. After a reboot the host must come back with the pinned key, booted into toplevel.`).Default(rebootNever),
		sdk.Number("rebootTimeout", "Seconds a rebooted host may take to answer SSH again.").Default(600),
	)
	return &sdk.Type[systemInputs, systemOutputs]{
		Description: "A NixOS system activated on a host over SSH: closure copied, activated under a dead-man switch, health-checked, then made the boot default; the previous system is re-activated on any failure.",
		Inputs:      inputs,
		Outputs: []sdk.Attr{
			sdk.String("toplevel", "The system Landscaper activated."),
			sdk.String("previous", `The system that ran before ("" on a host that ran none).`),
			sdk.Bool("needsReboot", "Whether the booted kernel, initrd or modules differ from the activated system's (or, for action boot, the system is not running yet)."),
			sdk.String("current", "What /run/current-system points at, as last read."),
			sdk.String("profile", "The system profile's generation (the boot default), as last read."),
			sdk.String("booted", "What /run/booted-system points at, as last read."),
		},
		Validate: validateSystem,
		Plan: func(ctx context.Context, p *sdk.Plan[systemInputs, systemOutputs]) {
			planSystem(ctx, p, pool)
		},
		Create: func(ctx context.Context, op *sdk.Op, in systemInputs) (systemOutputs, error) {
			return deploySystem(ctx, op, in, pool)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[systemInputs, systemOutputs], in systemInputs) (systemOutputs, error) {
			return deploySystem(ctx, op, in, pool)
		},
		Delete: forgetSystem,
		Read: func(ctx context.Context, prior sdk.State[systemInputs, systemOutputs]) (systemOutputs, bool, error) {
			return readSystem(ctx, prior, pool)
		},
		Prepare: prepareSystem,
	}
}

func validateSystem(in systemInputs, unknown []resource.Path) resource.Diagnostics {
	known := func(name string) bool { return !resource.Covered(resource.AttrPath(name), unknown) }
	diags := validateConnection(in.connection, unknown)
	diags = append(diags, validatePublicKey("hostPublicKey", in.HostPublicKey, unknown)...)
	if known("toplevel") && !isStorePath(in.Toplevel) {
		diags = append(diags, resource.Error(resource.AttrPath("toplevel"), "invalid toplevel", "toplevel must be a store path such as /nix/store/...-nixos-system-..., got %q", in.Toplevel))
	}
	if known("action") && in.Action != actionSwitch && in.Action != actionTest && in.Action != actionBoot {
		diags = append(diags, resource.Error(resource.AttrPath("action"), "invalid action", `action must be "switch", "test" or "boot", got %q`, in.Action))
	}
	if known("healthChecks") {
		diags = append(diags, validateHealthChecks(in.HealthChecks, unknown)...)
	}
	if known("reboot") {
		switch {
		case in.Reboot != rebootNever && in.Reboot != rebootIfNeeded && in.Reboot != rebootAlways:
			diags = append(diags, resource.Error(resource.AttrPath("reboot"), "invalid reboot", `reboot must be "never", "ifNeeded" or "always", got %q`, in.Reboot))
		case in.Reboot != rebootNever && known("action") && in.Action == actionTest:
			diags = append(diags, resource.Error(resource.AttrPath("reboot"), "reboot with action test", `action "test" leaves the boot default as it was, so a reboot would leave the system: use action "switch" or "boot" to reboot`))
		}
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"confirmTimeout", in.ConfirmTimeout}, {"activationTimeout", in.ActivationTimeout}, {"copyTimeout", in.CopyTimeout}, {"rebootTimeout", in.RebootTimeout}} {
		diags = append(diags, validateSeconds(s.name, s.v, unknown)...)
	}
	return diags
}

// isStorePath reports whether p is a path right under /nix/store.
func isStorePath(p string) bool {
	return strings.HasPrefix(p, "/nix/store/") && path.Clean(p) == p && !strings.Contains(strings.TrimPrefix(p, "/nix/store/"), "/") &&
		len(p) > len("/nix/store/")+33 && !strings.ContainsAny(p, "\x00\n'\"$`\\ ")
}

// inPlace reports whether the host runs the toplevel as the action asks:
// as the active system for test, as the boot default for boot, both for
// switch.
func inPlace(action, toplevel string, o systemOutputs) bool {
	switch action {
	case actionTest:
		return o.Current == toplevel
	case actionBoot:
		return o.Profile == toplevel
	}
	return o.Current == toplevel && o.Profile == toplevel
}

// planSystem turns a no-op into an update when the host no longer runs
// the recorded system (refresh read it): drift is repaired by the apply.
// For a change that a person will read, it tells what changes on the
// host (systemDetails).
func planSystem(ctx context.Context, p *sdk.Plan[systemInputs, systemOutputs], pool *connPool) {
	if p.Prior != nil && p.Prior.HasOutputs && p.Action == resource.ActionNoop && !inPlace(p.Desired.Action, p.Desired.Toplevel, p.Prior.Outputs) {
		p.Action = resource.ActionUpdate
		p.Changed = append(p.Changed, resource.AttrPath("toplevel"))
		p.Planned = nil
		p.UnknownOutputs = []string{"toplevel", "previous", "needsReboot", "current", "profile", "booted"}
		p.Diagnostics = append(p.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning,
			Summary: "the host does not run the recorded system",
			Detail:  fmt.Sprintf("%s runs %s (boot default %s), not %s; the apply activates it again", p.Desired.Address, orNone(p.Prior.Outputs.Current), orNone(p.Prior.Outputs.Profile), p.Desired.Toplevel)})
	}
	if !p.Describe || p.Action == resource.ActionNoop || p.Action == resource.ActionDelete || p.IsUnknown("toplevel") {
		return
	}
	reachable := true
	for _, name := range []string{"address", "port", "user", "privateKey", "hostPublicKey", "sudo"} {
		if p.IsUnknown(name) {
			reachable = false
		}
	}
	p.Details = systemDetails(ctx, p.Desired, reachable, pool)
}

// busyWaits is how many seconds the pre-flight waits for an activation
// lock to be released before it refuses the host.
const busyWaits = 15

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// target is the pinned target with the effective sudo setting.
func (in systemInputs) target() remote.Target {
	t := in.connection.target(in.HostPublicKey)
	if in.Sudo != nil {
		t.Sudo = *in.Sudo
	}
	return t
}

func deploySystem(ctx context.Context, op *sdk.Op, in systemInputs, pool *connPool) (systemOutputs, error) {
	t := in.target()
	c := pool.take(t)
	if c == nil {
		op.Progress("connecting to "+t.HostPort(), -1)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var err error
		c, err = remote.WaitFor(wctx, t, 30*time.Second, remote.DefaultBackoff, nil)
		cancel()
		if err != nil {
			return systemOutputs{}, &StepError{Host: t.HostPort(), Step: "connect", Err: err, Outcome: "nothing was changed"}
		}
	}
	defer c.Close()
	pre, err := preflight(ctx, c, in.Toplevel)
	if err != nil {
		return systemOutputs{}, &StepError{Host: t.HostPort(), Step: "pre-flight", Err: err, Outcome: "nothing was changed"}
	}
	// The supervisor of the previous activation releases its lock a
	// moment after that apply returned: wait a little before refusing.
	for wait := 0; len(pre.Busy) > 0 && wait < busyWaits; wait++ {
		if wait == 0 {
			op.Logf("%s: waiting for %s (another activation finishing?)", t.HostPort(), strings.Join(pre.Busy, ", "))
		}
		select {
		case <-ctx.Done():
			return systemOutputs{}, ctx.Err()
		case <-time.After(time.Second):
		}
		if pre, err = preflight(ctx, c, in.Toplevel); err != nil {
			return systemOutputs{}, &StepError{Host: t.HostPort(), Step: "pre-flight", Err: err, Outcome: "nothing was changed"}
		}
	}
	untouched := func(step string, err error) (systemOutputs, error) {
		return systemOutputs{}, &StepError{Host: t.HostPort(), Step: step, Err: err, Outcome: "nothing was changed; the host runs " + orNone(pre.Current)}
	}
	if len(pre.Busy) > 0 {
		return untouched("pre-flight", fmt.Errorf("another activation is in progress (lock held: %s)", strings.Join(pre.Busy, ", ")))
	}
	if len(pre.FailedUnits) > 0 {
		return untouched("pre-flight", fmt.Errorf("systemd reports failed units before anything changed: %s", strings.Join(pre.FailedUnits, ", ")))
	}
	if inPlace(in.Action, in.Toplevel, systemOutputs{Current: pre.Current, Profile: pre.Profile}) {
		op.Logf("%s already runs %s", t.HostPort(), in.Toplevel)
		return outputsFrom(in, pre, pre.Current), nil
	}
	if !pre.Present {
		op.Progress("copying the closure of "+in.Toplevel, -1)
		cctx, cancel := context.WithTimeout(ctx, seconds(in.CopyTimeout))
		err := c.Copy(cctx, []string{in.Toplevel}, remote.CopyOptions{SubstituteOnDestination: in.SubstituteOnDestination})
		cancel()
		if err != nil {
			return untouched("copy", err)
		}
		op.Logf("copied %s to %s", in.Toplevel, t.HostPort())
	} else {
		op.Logf("%s already holds %s", t.HostPort(), in.Toplevel)
	}
	previous := pre.Current
	post, read, err := activation.SwitchAndProbe(ctx, sshDriver(op, t, c), activation.Params{
		Toplevel: in.Toplevel, Current: pre.Current, Profile: pre.Profile,
		Test: in.Action != actionBoot, Boot: in.Action != actionTest,
		Checks:            healthChecksOf(in.HealthChecks),
		ActivationTimeout: seconds(in.ActivationTimeout), ConfirmTimeout: seconds(in.ConfirmTimeout),
	})
	if err != nil {
		return systemOutputs{}, err
	}
	if !read {
		// The boot default was not set (action test, or it already was):
		// nothing read the host after the activation.
		if post, err = runProbe(ctx, c, in.Toplevel, false); err != nil {
			return systemOutputs{}, fmt.Errorf("%s: read the result: %w", t.HostPort(), err)
		}
	}
	op.Logf("%s runs %s, boot default %s", t.HostPort(), orNone(post.Current), orNone(post.Profile))
	if in.Reboot == rebootAlways || (in.Reboot == rebootIfNeeded && (post.Reboot || post.Current != in.Toplevel)) {
		if post, err = rebootInto(ctx, op, c, in); err != nil {
			return systemOutputs{}, err
		}
	}
	return outputsFrom(in, post, previous), nil
}

// rebootInto reboots the host into the system that is now its boot
// default and checks that it booted it.
func rebootInto(ctx context.Context, op *sdk.Op, c *remote.Client, in systemInputs) (activation.Probe, error) {
	t := c.Target()
	nc, err := rebootAndWait(ctx, op, c, seconds(in.RebootTimeout))
	if err != nil {
		return activation.Probe{}, &StepError{Host: t.HostPort(), Step: "reboot", Err: err, Outcome: in.Toplevel + " is the boot default"}
	}
	defer nc.Close()
	post, err := runProbe(ctx, nc, in.Toplevel, false)
	if err != nil {
		return activation.Probe{}, &StepError{Host: t.HostPort(), Step: "reboot", Err: fmt.Errorf("read the rebooted host: %w", err), Outcome: in.Toplevel + " is the boot default"}
	}
	if post.Booted != in.Toplevel {
		return activation.Probe{}, &StepError{Host: t.HostPort(), Step: "reboot", Err: fmt.Errorf("the host booted %s, not %s", orNone(post.Booted), in.Toplevel),
			Outcome: "its boot default is " + orNone(post.Profile)}
	}
	op.Logf("%s rebooted into %s", t.HostPort(), in.Toplevel)
	return post, nil
}

func outputsFrom(in systemInputs, p activation.Probe, previous string) systemOutputs {
	return systemOutputs{
		Toplevel:    in.Toplevel,
		Previous:    previous,
		NeedsReboot: p.Reboot || (in.Action == actionBoot && p.Current != in.Toplevel),
		Current:     p.Current,
		Profile:     p.Profile,
		Booted:      p.Booted,
	}
}

// prepareSystem copies the closure ahead of the activation (a rollout
// copies to every host first): nothing runs differently on the host.
func prepareSystem(ctx context.Context, _ *sdk.State[systemInputs, systemOutputs], in systemInputs) error {
	t := in.target()
	c, err := dialWithin(ctx, t, time.Minute)
	if err != nil {
		return fmt.Errorf("%s: %w", t.HostPort(), err)
	}
	defer c.Close()
	p, err := preflight(ctx, c, in.Toplevel)
	var notRoot *remote.NotRootError
	if errors.As(err, &notRoot) {
		return fmt.Errorf("%s: copy ahead: %w; nothing was copied", t.HostPort(), err)
	}
	if err != nil || p.Present {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, seconds(in.CopyTimeout))
	defer cancel()
	return c.Copy(cctx, []string{in.Toplevel}, remote.CopyOptions{SubstituteOnDestination: in.SubstituteOnDestination})
}

// forgetSystem leaves the machine running what it runs.
func forgetSystem(_ context.Context, op *sdk.Op, prior sdk.State[systemInputs, systemOutputs]) error {
	op.Logf("forgetting %s; it keeps running %s", prior.Inputs.Address, orNone(prior.Outputs.Current))
	return nil
}

// readSystem reports the current, profile and booted systems, and keeps
// its connection in pool for an update that may follow.
func readSystem(ctx context.Context, prior sdk.State[systemInputs, systemOutputs], pool *connPool) (systemOutputs, bool, error) {
	if !prior.HasOutputs {
		return systemOutputs{}, false, nil
	}
	in := prior.Inputs
	c, err := dialWithin(ctx, in.target(), 30*time.Second)
	if err != nil {
		return systemOutputs{}, false, fmt.Errorf("read %s: %w", in.Address, err)
	}
	p, err := runProbe(ctx, c, prior.Outputs.Toplevel, false)
	if err != nil {
		c.Close()
		return systemOutputs{}, false, fmt.Errorf("read %s: %w", in.Address, err)
	}
	pool.put(c)
	out := prior.Outputs
	out.Current, out.Profile, out.Booted = p.Current, p.Profile, p.Booted
	out.NeedsReboot = p.Reboot || (in.Action == actionBoot && p.Current != out.Toplevel)
	return out, true, nil
}
