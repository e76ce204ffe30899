package nixos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// nixos.pull publishes a host's system to the pull directory that
// `landscaper serve --pull-dir` serves; the host's `landscaper agent`
// fetches, activates and reports it (docs/pull.md).

type pullInputs struct {
	PullDir           string                     `json:"pullDir"`
	HostPublicKey     string                     `json:"hostPublicKey"`
	Toplevel          string                     `json:"toplevel"`
	HealthChecks      []healthCheckDef           `json:"healthChecks"`
	ConfirmTimeout    float64                    `json:"confirmTimeout"`
	ActivationTimeout float64                    `json:"activationTimeout"`
	Secrets           map[string]json.RawMessage `json:"secrets"`
	Wait              bool                       `json:"wait"`
	WaitTimeout       float64                    `json:"waitTimeout"`
}

type pullOutputs struct {
	Generation float64 `json:"generation"`
	HostID     string  `json:"hostId"`
	Current    string  `json:"current"`
	Booted     string  `json:"booted"`
	Status     string  `json:"status"`
}

// pullSecret is one decoded member of secrets.
type pullSecret struct {
	Contents string `json:"contents"`
	Mode     string `json:"mode"`
}

// statusPending is the status of a generation no report speaks of yet.
const statusPending = "pending"

func pullType() *sdk.Type[pullInputs, pullOutputs] {
	secrets := sdk.Map("secrets", "object", `Files the agent writes on the host before it activates: absolute path -> { contents; mode ? "0400"; }. Sealed with age to hostPublicKey: the pull directory and the server hold them only encrypted; never in the Nix store.`).
		Default(map[string]any{}).Sensitive()
	secrets.Attributes = []resource.Attribute{
		sdk.String("contents", "The file's contents.").Required().Sensitive().Attribute,
		sdk.String("mode", "Permission bits in octal, like \"0400\".").Default("0400").Attribute,
	}
	return &sdk.Type[pullInputs, pullOutputs]{
		Description: "A host's system published for pull mode: the host's landscaper agent fetches it from landscaper serve --pull-dir, activates it as nixos.system does (test, health checks, boot; rolled back unless confirmed) and reports back.",
		Inputs: []sdk.Attr{
			sdk.String("pullDir", "The pull directory landscaper serve --pull-dir serves (on this machine). A change replaces the member.").Required().ForceNew(),
			sdk.String("hostPublicKey", `The host's ed25519 SSH host key ("ssh-ed25519 AAAA...", e.g. nixos.host-key's hostPublicKey): the host signs its requests with it, and its secrets are sealed to it. A change replaces the member.`).Required().ForceNew(),
			sdk.String("toplevel", "The system's store path (config.system.build.toplevel), built before the apply; the server's binary cache serves its closure to this host only.").Required(),
			healthChecksAttr(`Checks the agent runs after activating, in order: { command = "..."; } runs on the host (passes on exit 0), { url = "http://..."; } is fetched by the agent (passes on 2xx); each with timeout (seconds, 10), retries (3) and interval (seconds, 2).`),
			sdk.Number("confirmTimeout", "Seconds the host has, after activating, to reach the server over a new connection; else it re-activates its previous system on its own.").Default(30),
			sdk.Number("activationTimeout", "Seconds switch-to-configuration may take on the host.").Default(600),
			secrets,
			sdk.Bool("wait", "Wait until the host reports this generation: the apply fails, naming the host, when it rolled back or failed.").Default(false),
			sdk.Number("waitTimeout", "Seconds to wait for the host's report (with wait).").Default(600),
		},
		Outputs: []sdk.Attr{
			sdk.Number("generation", "The generation published for the host (counts from 1)."),
			sdk.String("hostId", "The host's ID in the pull directory and the API (hosts/<hostId>/)."),
			sdk.String("current", "What the host runs, from its last report (\"\" before any)."),
			sdk.String("booted", "What the host booted, from its last report."),
			sdk.String("status", `The last report's result for this generation: "activated", "rolled-back", "failed", "fetch-failed", or "pending" while no report of it came.`),
		},
		Validate: validatePull,
		Plan:     planPull,
		Create: func(ctx context.Context, op *sdk.Op, in pullInputs) (pullOutputs, error) {
			return publishPull(ctx, op, in)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[pullInputs, pullOutputs], in pullInputs) (pullOutputs, error) {
			return publishPull(ctx, op, in)
		},
		Delete: deletePull,
		Read:   readPull,
	}
}

func validatePull(in pullInputs, unknown []resource.Path) resource.Diagnostics {
	diags := validatePublished(published{in.PullDir, in.Toplevel, in.HealthChecks, in.Secrets}, unknown,
		timeout{"confirmTimeout", in.ConfirmTimeout}, timeout{"activationTimeout", in.ActivationTimeout}, timeout{"waitTimeout", in.WaitTimeout})
	if !resource.Covered(resource.AttrPath("hostPublicKey"), unknown) {
		if _, err := pulldir.ParseHostKey(in.HostPublicKey); err != nil {
			diags = append(diags, resource.Error(resource.AttrPath("hostPublicKey"), "invalid hostPublicKey", "hostPublicKey must be the host's ed25519 key, \"ssh-ed25519 AAAA...\": %v", err))
		}
	}
	return diags
}

// published are the inputs nixos.pull and nixos.pull-role share: what
// they publish, and where.
type published struct {
	pullDir, toplevel string
	checks            []healthCheckDef
	secrets           map[string]json.RawMessage
}

// timeout is an input in seconds.
type timeout struct {
	name string
	v    float64
}

// validatePublished checks the inputs nixos.pull and nixos.pull-role
// share; attributes not known yet are not judged.
func validatePublished(in published, unknown []resource.Path, timeouts ...timeout) resource.Diagnostics {
	known := func(name string) bool { return !resource.Covered(resource.AttrPath(name), unknown) }
	var diags resource.Diagnostics
	if known("pullDir") && in.pullDir == "" {
		diags = append(diags, resource.Error(resource.AttrPath("pullDir"), "invalid pullDir", "pullDir must name the directory landscaper serve --pull-dir serves"))
	}
	if known("toplevel") && !isStorePath(in.toplevel) {
		diags = append(diags, resource.Error(resource.AttrPath("toplevel"), "invalid toplevel", "toplevel must be a store path such as /nix/store/...-nixos-system-..., got %q", in.toplevel))
	}
	if known("healthChecks") {
		diags = append(diags, validateHealthChecks(in.checks, unknown)...)
	}
	if known("secrets") {
		_, d := parsePullSecrets(in.secrets, unknown)
		diags = append(diags, d...)
	}
	for _, t := range timeouts {
		diags = append(diags, validateSeconds(t.name, t.v, unknown)...)
	}
	return diags
}

// parsePullSecrets decodes secrets, checking paths and modes; values
// never appear in a diagnostic.
func parsePullSecrets(raw map[string]json.RawMessage, unknown []resource.Path) (map[string]pullSecret, resource.Diagnostics) {
	var diags resource.Diagnostics
	out := map[string]pullSecret{}
	for name, v := range raw {
		p := resource.AttrPath("secrets").Key(name)
		if err := pullsecret.CheckPath(name); err != nil {
			diags = append(diags, resource.Error(p, "invalid secret path", "%v", err))
			continue
		}
		if resource.Covered(p, unknown) {
			continue
		}
		s := pullSecret{Mode: "0400"}
		if err := json.Unmarshal(v, &s); err != nil {
			diags = append(diags, resource.Error(p, "invalid secret", "want { contents; mode; }"))
			continue
		}
		m, err := sdk.ParseFileMode(s.Mode)
		if err == nil && m&^0o777 != 0 {
			err = fmt.Errorf("mode %q: only permission bits (at most 0777)", s.Mode)
		}
		if err != nil {
			diags = append(diags, resource.Error(p.Attr("mode"), "invalid secret mode", "%v", err))
			continue
		}
		out[name] = s
	}
	return out, diags
}

// planPull makes a no-op an update when the host's reports (refreshed
// by Read) say it does not run what was published: it rolled the
// generation back, failed it, or runs something else since. The apply
// publishes it again as a new generation. A host that has not reported
// the generation yet ("pending") is left to catch up.
func planPull(_ context.Context, p *sdk.Plan[pullInputs, pullOutputs]) {
	if p.Prior == nil || !p.Prior.HasOutputs || p.Action != resource.ActionNoop || p.IsUnknown("toplevel") {
		return
	}
	o := p.Prior.Outputs
	behind := o.Status == pulldir.ResultRolledBack || o.Status == pulldir.ResultFailed ||
		(o.Status == pulldir.ResultActivated && o.Current != p.Desired.Toplevel)
	if !behind {
		return
	}
	p.Action = resource.ActionUpdate
	p.Changed = append(p.Changed, resource.AttrPath("toplevel"))
	p.Planned = nil
	p.UnknownOutputs = []string{"generation", "hostId", "current", "booted", "status"}
	p.Diagnostics = append(p.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning,
		Summary: "the host does not run its published system",
		Detail:  fmt.Sprintf("host %s runs %s, not %s (generation %.0f: %s); the apply publishes it again", o.HostID, orNone(o.Current), p.Desired.Toplevel, o.Generation, o.Status)})
}

// publishPull seals the secrets, keeps the system alive in the store
// (a GC root in the pull directory), publishes the next generation and,
// with wait, waits for the host's report of it.
func publishPull(ctx context.Context, op *sdk.Op, in pullInputs) (pullOutputs, error) {
	key, err := pulldir.ParseHostKey(in.HostPublicKey)
	if err != nil {
		return pullOutputs{}, err
	}
	dir, err := pullDirOf(in.PullDir)
	if err != nil {
		return pullOutputs{}, err
	}
	id := pulldir.HostID(key)
	want := desiredOf(in.Toplevel, in.HealthChecks, in.ConfirmTimeout, in.ActivationTimeout)
	if want.Secrets, err = sealSecrets(in.Secrets, func(b []byte) (string, error) { return pullsecret.Seal(key, b) }); err != nil {
		return pullOutputs{}, err
	}
	// The host directory must exist for the GC root; Publish makes it.
	published, err := dir.Publish(key, want)
	if err != nil {
		return pullOutputs{}, err
	}
	if err := addRoot(ctx, dir.SystemRoot(id), in.Toplevel); err != nil {
		return pullOutputs{}, err
	}
	op.Logf("published generation %d of host %s: %s", published.Generation, ssh.FingerprintSHA256(key), in.Toplevel)
	out := pullOutputs{Generation: float64(published.Generation), HostID: id, Status: statusPending}
	if last, ok, err := lastReport(dir, id); err == nil && ok {
		out.Current, out.Booted = last.Current, last.Booted
	}
	if !in.Wait {
		return out, nil
	}
	return waitForReport(ctx, op, dir, key, published, seconds(in.WaitTimeout))
}

// addRoot makes link a GC root of the store path (nix-store --add-root),
// so the server's store keeps what it serves.
func addRoot(ctx context.Context, link, storePath string) error {
	cmd := exec.CommandContext(ctx, "nix-store", "--add-root", link, "--realise", storePath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("keep %s in the store (nix-store --add-root %s): %w: %s", storePath, link, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// waitForReport waits for the host's report of the generation.
func waitForReport(ctx context.Context, op *sdk.Op, dir pulldir.Dir, key ssh.PublicKey, gen pulldir.Desired, within time.Duration) (pullOutputs, error) {
	id := pulldir.HostID(key)
	host := "host " + ssh.FingerprintSHA256(key)
	op.Progress(fmt.Sprintf("waiting for %s to report generation %d", host, gen.Generation), -1)
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	lastFetchFailure := ""
	for {
		reports, err := dir.Reports(id)
		if err != nil {
			return pullOutputs{}, err
		}
		for _, r := range reports {
			if r.Generation != gen.Generation {
				continue
			}
			out := pullOutputs{Generation: float64(gen.Generation), HostID: id, Current: r.Current, Booted: r.Booted, Status: r.Result}
			switch r.Result {
			case pulldir.ResultActivated:
				op.Logf("%s activated generation %d: runs %s", host, gen.Generation, r.Current)
				return out, nil
			case pulldir.ResultRolledBack, pulldir.ResultFailed:
				msg := fmt.Sprintf("%s did not keep generation %d (%s): %s: %s; it runs %s", host, gen.Generation, gen.Toplevel, r.Result, r.Reason, orNone(r.Current))
				if r.Log != "" {
					msg += "\nactivation log:\n" + r.Log
				}
				return out, errors.New(msg)
			case pulldir.ResultFetchFailed:
				// The agent tries again in its next cycle.
				lastFetchFailure = r.Reason
			}
			break
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("%s did not report generation %d within waitTimeout (%s)", host, gen.Generation, within)
			if lastFetchFailure != "" {
				msg += "; its last report: could not fetch it: " + lastFetchFailure
			}
			return pullOutputs{Generation: float64(gen.Generation), HostID: id, Status: statusPending}, errors.New(msg)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func lastReport(dir pulldir.Dir, id string) (pulldir.Report, bool, error) {
	reports, err := dir.Reports(id)
	if err != nil || len(reports) == 0 {
		return pulldir.Report{}, false, err
	}
	return reports[0], true, nil
}

// readPull refreshes the outputs from the host's reports.
func readPull(_ context.Context, prior sdk.State[pullInputs, pullOutputs]) (pullOutputs, bool, error) {
	if !prior.HasOutputs {
		return pullOutputs{}, false, nil
	}
	abs, err := filepath.Abs(prior.Inputs.PullDir)
	if err != nil {
		return pullOutputs{}, false, err
	}
	dir := pulldir.Dir{Path: abs}
	out := prior.Outputs
	desired, ok, err := dir.Desired(out.HostID)
	if err != nil {
		return pullOutputs{}, false, err
	}
	if !ok {
		// Gone from the pull directory: the next apply publishes again.
		return pullOutputs{}, false, nil
	}
	out.Generation = float64(desired.Generation)
	out.Status = statusPending
	last, ok, err := lastReport(dir, out.HostID)
	if err != nil {
		return pullOutputs{}, false, err
	}
	if ok {
		out.Current, out.Booted = last.Current, last.Booted
		if last.Generation == desired.Generation {
			out.Status = last.Result
		}
	}
	return out, true, nil
}

// deletePull removes the host from the pull directory: the server no
// longer answers it, and the host keeps running what it runs.
func deletePull(_ context.Context, op *sdk.Op, prior sdk.State[pullInputs, pullOutputs]) error {
	abs, err := filepath.Abs(prior.Inputs.PullDir)
	if err != nil {
		return err
	}
	id := prior.Outputs.HostID
	if id == "" {
		key, err := pulldir.ParseHostKey(prior.Inputs.HostPublicKey)
		if err != nil {
			return err
		}
		id = pulldir.HostID(key)
	}
	if err := (pulldir.Dir{Path: abs}).Forget(id); err != nil {
		return err
	}
	op.Logf("removed host %s from %s; it keeps running %s", id, abs, orNone(prior.Outputs.Current))
	return nil
}
