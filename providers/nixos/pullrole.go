package nixos

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// nixos.pull-role: cattle. A role is a system that any machine holding
// its enrollment token can take: the machine's `landscaper agent --role
// NAME --enroll-token-file FILE` enrolls its host key with the pull
// server and from then on runs the role's generation. A new generation
// goes through the enrolled hosts in batches, with a failure budget.

type pullRoleInputs struct {
	PullDir           string                     `json:"pullDir"`
	Role              string                     `json:"role"`
	Toplevel          string                     `json:"toplevel"`
	HealthChecks      []healthCheckDef           `json:"healthChecks"`
	ConfirmTimeout    float64                    `json:"confirmTimeout"`
	ActivationTimeout float64                    `json:"activationTimeout"`
	Secrets           map[string]json.RawMessage `json:"secrets"`
	EnrollToken       string                     `json:"enrollToken"`
	BatchSize         int                        `json:"batchSize"`
	MaxFailures       int                        `json:"maxFailures"`
	WaitTimeout       float64                    `json:"waitTimeout"`
	GoneAfter         float64                    `json:"goneAfter"`
}

type roleHost struct {
	ID         string  `json:"id"`
	HostKey    string  `json:"hostKey"`
	EnrolledAt string  `json:"enrolledAt"`
	Generation float64 `json:"generation"`
	Current    string  `json:"current"`
	Status     string  `json:"status"`
	Gone       bool    `json:"gone"`
}

type pullRoleOutputs struct {
	Generation          float64    `json:"generation"`
	CompletedGeneration float64    `json:"completedGeneration"`
	Hosts               []roleHost `json:"hosts"`
}

// minTokenLength is the shortest enrollment token taken: the token is a
// password that anyone on the boot network may try offline against a
// proof they overheard.
const minTokenLength = 16

// statusGone is the status of a host not heard from for goneAfter.
const statusGone = "gone"

func pullRoleType() *sdk.Type[pullRoleInputs, pullRoleOutputs] {
	secrets := sdk.Map("secrets", "object", `Files the agent writes on every host of the role before it activates: absolute path -> { contents; mode ? "0400"; }. Sealed with age to the enrollment token: the pull directory and the server hold them only encrypted, every enrolled host can open them; never in the Nix store.`).
		Default(map[string]any{}).Sensitive()
	secrets.Attributes = []resource.Attribute{
		sdk.String("contents", "The file's contents.").Required().Sensitive().Attribute,
		sdk.String("mode", "Permission bits in octal, like \"0400\".").Default("0400").Attribute,
	}
	return &sdk.Type[pullRoleInputs, pullRoleOutputs]{
		Description: "A role that machines enroll in (cattle): any machine whose landscaper agent runs with --role and the enrollment token enrolls its host key and runs the role's system; a new system goes through the enrolled hosts in batches with a failure budget.",
		Inputs: []sdk.Attr{
			sdk.String("pullDir", "The pull directory landscaper serve --pull-dir serves (on this machine). A change replaces the member.").Required().ForceNew(),
			sdk.String("role", "The role's name, as agents give it to --role: 1 to 63 of a-z 0-9 . _ -. A change replaces the member.").Required().ForceNew(),
			sdk.String("toplevel", "The role's system (config.system.build.toplevel), built before the apply; the server's binary cache serves its closure to the role's hosts.").Required(),
			healthChecksAttr(`Checks each host's agent runs after activating, in order: { command = "..."; } runs on the host, { url = "http://..."; } is fetched by the agent; each with timeout (seconds, 10), retries (3) and interval (seconds, 2).`),
			sdk.Number("confirmTimeout", "Seconds a host has, after activating, to reach the server over a new connection; else it re-activates its previous system on its own.").Default(30),
			sdk.Number("activationTimeout", "Seconds switch-to-configuration may take on a host.").Default(600),
			secrets,
			sdk.String("enrollToken", "The enrollment token (at least 16 characters; make it random, e.g. openssl rand -hex 32): a machine whose agent holds it enrolls in the role and can open the role's secrets. The pull directory keeps only a key derived from it. Changing it lets only holders of the new token enroll; hosts already enrolled stay, and need the new token to open secrets sealed after the change.").Required().Sensitive(),
			sdk.Integer("batchSize", "Hosts that take a new generation at once; the next batch starts when every host of this one reported.").Between(1, 100000).Default(1),
			sdk.Integer("maxFailures", "Hosts that may fail (roll back, fail, or not report within waitTimeout) before the rollout stops; the hosts not reached keep the previous generation.").Between(0, 100000).Default(0),
			sdk.Number("waitTimeout", "Seconds a batch's hosts have to report a new generation.").Default(600),
			sdk.Number("goneAfter", "Seconds after which a host that has not asked for its generation is reported gone and left out of rollouts (agents ask at least every --interval, 5 minutes by default).").Default(900),
		},
		Outputs: []sdk.Attr{
			sdk.Number("generation", "The role's latest generation (counts from 1)."),
			sdk.Number("completedGeneration", "The last generation whose rollout finished: what hosts that are not in a rollout, and hosts that enroll, run. Less than generation after a rollout stopped; the next apply rolls out again."),
			sdk.ListOfObjects("hosts", "The enrolled hosts, by enrollment time.",
				sdk.String("id", "The host's ID in the pull directory."),
				sdk.String("hostKey", "Its SSH host key."),
				sdk.String("enrolledAt", "When it enrolled (RFC 3339)."),
				sdk.Number("generation", "The generation of its last report (0 before any)."),
				sdk.String("current", "What it runs, from its last report."),
				sdk.String("status", `Its last report's result for that generation ("activated", "rolled-back", "failed", "fetch-failed"), "pending" before any, or "gone" when it has not asked for goneAfter.`),
				sdk.Bool("gone", "Not heard from for goneAfter: left out of rollouts."),
			),
		},
		Validate: validatePullRole,
		Plan:     planPullRole,
		Create: func(ctx context.Context, op *sdk.Op, in pullRoleInputs) (pullRoleOutputs, error) {
			return rollOutRole(ctx, op, in)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[pullRoleInputs, pullRoleOutputs], in pullRoleInputs) (pullRoleOutputs, error) {
			return rollOutRole(ctx, op, in)
		},
		Delete: deletePullRole,
		Read:   readPullRole,
	}
}

func validatePullRole(in pullRoleInputs, unknown []resource.Path) resource.Diagnostics {
	known := func(name string) bool { return !resource.Covered(resource.AttrPath(name), unknown) }
	diags := validatePublished(published{in.PullDir, in.Toplevel, in.HealthChecks, in.Secrets}, unknown,
		timeout{"confirmTimeout", in.ConfirmTimeout}, timeout{"activationTimeout", in.ActivationTimeout}, timeout{"waitTimeout", in.WaitTimeout}, timeout{"goneAfter", in.GoneAfter})
	if known("role") {
		if err := pulldir.ValidRole(in.Role); err != nil {
			diags = append(diags, resource.Error(resource.AttrPath("role"), "invalid role", "%v", err))
		}
	}
	if known("enrollToken") {
		// Never the token itself in a diagnostic.
		if n := len(strings.TrimSpace(in.EnrollToken)); n < minTokenLength || n != len(in.EnrollToken) {
			diags = append(diags, resource.Error(resource.AttrPath("enrollToken"), "invalid enrollToken", "enrollToken must be at least %d characters with no surrounding white space (make one with openssl rand -hex 32); got %d characters", minTokenLength, len(in.EnrollToken)))
		}
	}
	return diags
}

// planPullRole makes a no-op an update when the last rollout stopped
// before it reached every host: the apply rolls the system out again.
func planPullRole(_ context.Context, p *sdk.Plan[pullRoleInputs, pullRoleOutputs]) {
	if p.Prior == nil || !p.Prior.HasOutputs || p.Action != resource.ActionNoop {
		return
	}
	o := p.Prior.Outputs
	if o.CompletedGeneration >= o.Generation {
		return
	}
	p.Action = resource.ActionUpdate
	p.Changed = append(p.Changed, resource.AttrPath("toplevel"))
	p.Planned = nil
	p.UnknownOutputs = []string{"generation", "completedGeneration", "hosts"}
	p.Diagnostics = append(p.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning,
		Summary: "the role's last rollout did not finish",
		Detail:  fmt.Sprintf("role %s: generation %.0f was not rolled out to every host (hosts not in a rollout run generation %.0f); the apply rolls it out again as a new generation", p.Desired.Role, o.Generation, o.CompletedGeneration)})
}

func pullDirOf(pullDir string) (pulldir.Dir, error) {
	abs, err := filepath.Abs(pullDir)
	if err != nil {
		return pulldir.Dir{}, fmt.Errorf("pullDir: %w", err)
	}
	return pulldir.Dir{Path: abs}, nil
}

// desiredOf is the generation the inputs describe, secrets not included.
func desiredOf(toplevel string, checks []healthCheckDef, confirm, activation float64) pulldir.Desired {
	want := pulldir.Desired{Toplevel: toplevel, ConfirmTimeout: confirm, ActivationTimeout: activation}
	for _, h := range healthChecksOf(checks) {
		want.HealthChecks = append(want.HealthChecks, pulldir.HealthCheck{Command: h.Command, URL: h.URL, Timeout: h.Timeout.Seconds(), Retries: h.Retries, Interval: h.Interval.Seconds()})
	}
	return want
}

// sealSecrets seals each secret with seal, in the order of their paths.
func sealSecrets(raw map[string]json.RawMessage, seal func([]byte) (string, error)) ([]pulldir.Secret, error) {
	secrets, diags := parsePullSecrets(raw, nil)
	if diags.HasError() {
		return nil, diags.Err()
	}
	paths := make([]string, 0, len(secrets))
	for p := range secrets {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []pulldir.Secret
	for _, p := range paths {
		sealed, err := seal([]byte(secrets[p].Contents))
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", p, err)
		}
		out = append(out, pulldir.Secret{Path: p, Mode: secrets[p].Mode, Age: sealed})
	}
	return out, nil
}

// rollOutRole publishes the role's next generation and takes it through
// the enrolled hosts in batches: each batch's hosts get it ahead of the
// role, and the next batch starts when all of them reported. More
// failures than maxFailures stop the rollout: the hosts not reached keep
// the previous generation. At the end the generation becomes the role's,
// for every host (and for machines that enroll later).
func rollOutRole(ctx context.Context, op *sdk.Op, in pullRoleInputs) (pullRoleOutputs, error) {
	dir, err := pullDirOf(in.PullDir)
	if err != nil {
		return pullRoleOutputs{}, err
	}
	want := desiredOf(in.Toplevel, in.HealthChecks, in.ConfirmTimeout, in.ActivationTimeout)
	if want.Secrets, err = sealSecrets(in.Secrets, func(b []byte) (string, error) { return pullsecret.SealForRole(in.EnrollToken, b) }); err != nil {
		return pullRoleOutputs{}, err
	}
	if err := dir.SetRoleEnrollKey(in.Role, pullauth.EnrollKey(in.EnrollToken)); err != nil {
		return pullRoleOutputs{}, err
	}
	if err := addRoot(ctx, dir.RoleTargetRoot(in.Role), in.Toplevel); err != nil {
		return pullRoleOutputs{}, err
	}
	gen, err := dir.SetRoleTarget(in.Role, want)
	if err != nil {
		return pullRoleOutputs{}, err
	}
	all, err := dir.RoleHosts(in.Role)
	if err != nil {
		return pullRoleOutputs{}, err
	}
	now := time.Now()
	var hosts []pulldir.Enrolled
	for _, h := range all {
		if now.Sub(h.LastSeen) > seconds(in.GoneAfter) {
			op.Logf("role %s: host %s not heard from since %s: gone, left out", in.Role, h.ID, h.LastSeen.Format(time.RFC3339))
			continue
		}
		hosts = append(hosts, h)
	}
	op.Logf("role %s: generation %d (%s) for %d host(s), %d at a time", in.Role, gen.Generation, in.Toplevel, len(hosts), in.BatchSize)
	var failed []string
	var reached []pulldir.Enrolled
	for start := 0; start < len(hosts); start += in.BatchSize {
		batch := hosts[start:min(start+in.BatchSize, len(hosts))]
		n, total := start/in.BatchSize+1, (len(hosts)+in.BatchSize-1)/in.BatchSize
		op.Progress(fmt.Sprintf("role %s: batch %d of %d (%d host(s))", in.Role, n, total, len(batch)), -1)
		for _, h := range batch {
			if err := dir.SetHostDesired(h.ID, gen); err != nil {
				return pullRoleOutputs{}, err
			}
			if err := addRoot(ctx, dir.SystemRoot(h.ID), in.Toplevel); err != nil {
				return pullRoleOutputs{}, err
			}
		}
		reached = append(reached, batch...)
		results := awaitBatch(ctx, dir, batch, gen.Generation, seconds(in.WaitTimeout))
		ok := 0
		for _, h := range batch {
			if r := results[h.ID]; r != "" {
				failed = append(failed, r)
			} else {
				ok++
			}
		}
		op.Logf("role %s: batch %d of %d: %d of %d host(s) activated generation %d", in.Role, n, total, ok, len(batch), gen.Generation)
		if len(failed) > in.MaxFailures {
			out, rerr := roleOutputs(dir, in.Role, seconds(in.GoneAfter))
			if rerr != nil {
				return pullRoleOutputs{}, rerr
			}
			msg := fmt.Sprintf("role %s: the rollout of generation %d stopped after batch %d of %d: %d host(s) failed, more than maxFailures (%d):\n  %s", in.Role, gen.Generation, n, total, len(failed), in.MaxFailures, strings.Join(failed, "\n  "))
			if left := len(hosts) - start - len(batch); left > 0 {
				msg += fmt.Sprintf("\n%d host(s) not reached keep generation %.0f", left, out.CompletedGeneration)
			}
			return out, fmt.Errorf("%s", msg)
		}
	}
	if err := addRoot(ctx, dir.RoleSystemRoot(in.Role), in.Toplevel); err != nil {
		return pullRoleOutputs{}, err
	}
	if err := dir.SetRoleDesired(in.Role, gen); err != nil {
		return pullRoleOutputs{}, err
	}
	// Every host follows the role again; they run what it says already.
	for _, h := range reached {
		if err := dir.ClearHostDesired(h.ID); err != nil {
			return pullRoleOutputs{}, err
		}
	}
	if len(failed) > 0 {
		op.Warn(nil, "hosts failed within the budget", "role %s: generation %d rolled out; %d host(s) failed, within maxFailures (%d):\n  %s", in.Role, gen.Generation, len(failed), in.MaxFailures, strings.Join(failed, "\n  "))
	}
	return roleOutputs(dir, in.Role, seconds(in.GoneAfter))
}

// awaitBatch waits until every host of the batch reported the generation,
// or within passed; it returns, by host ID, why each host that did not
// activate it failed ("" for those that did).
func awaitBatch(ctx context.Context, dir pulldir.Dir, batch []pulldir.Enrolled, gen int64, within time.Duration) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	results := map[string]string{}
	pending := map[string]pulldir.Enrolled{}
	for _, h := range batch {
		pending[h.ID] = h
	}
	fetchFailure := map[string]string{}
	for len(pending) > 0 {
		for id, h := range pending {
			reports, err := dir.Reports(id)
			if err != nil {
				continue
			}
			for _, r := range reports {
				if r.Generation != gen {
					continue
				}
				switch r.Result {
				case pulldir.ResultActivated:
					results[id] = ""
					delete(pending, id)
				case pulldir.ResultRolledBack, pulldir.ResultFailed:
					msg := fmt.Sprintf("host %s (%s): %s: %s; it runs %s", id, fingerprintOf(h.HostKey), r.Result, r.Reason, orNone(r.Current))
					results[id] = msg
					delete(pending, id)
				case pulldir.ResultFetchFailed:
					fetchFailure[id] = r.Reason
				}
				break
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for id, h := range pending {
				msg := fmt.Sprintf("host %s (%s): did not report generation %d within waitTimeout (%s)", id, fingerprintOf(h.HostKey), gen, within)
				if f := fetchFailure[id]; f != "" {
					msg += "; its last report: could not fetch it: " + f
				}
				results[id] = msg
			}
			return results
		case <-time.After(500 * time.Millisecond):
		}
	}
	return results
}

func fingerprintOf(authorizedKey string) string {
	key, err := pulldir.ParseHostKey(authorizedKey)
	if err != nil {
		return "unreadable key"
	}
	return ssh.FingerprintSHA256(key)
}

// roleOutputs reads the role's generations and hosts from the directory.
func roleOutputs(dir pulldir.Dir, role string, goneAfter time.Duration) (pullRoleOutputs, error) {
	out := pullRoleOutputs{Hosts: []roleHost{}}
	target, ok, err := dir.RoleTarget(role)
	if err != nil {
		return out, err
	}
	if ok {
		out.Generation = float64(target.Generation)
	}
	desired, ok, err := dir.RoleDesired(role)
	if err != nil {
		return out, err
	}
	if ok {
		out.CompletedGeneration = float64(desired.Generation)
	}
	hosts, err := dir.RoleHosts(role)
	if err != nil {
		return out, err
	}
	now := time.Now()
	for _, h := range hosts {
		rh := roleHost{ID: h.ID, HostKey: h.HostKey, EnrolledAt: h.EnrolledAt.Format(time.RFC3339), Status: statusPending}
		if last, ok, err := lastReport(dir, h.ID); err == nil && ok {
			rh.Generation, rh.Current, rh.Status = float64(last.Generation), last.Current, last.Result
		}
		if now.Sub(h.LastSeen) > goneAfter {
			rh.Gone, rh.Status = true, statusGone
		}
		out.Hosts = append(out.Hosts, rh)
	}
	return out, nil
}

// readPullRole refreshes the outputs from the directory.
func readPullRole(_ context.Context, prior sdk.State[pullRoleInputs, pullRoleOutputs]) (pullRoleOutputs, bool, error) {
	if !prior.HasOutputs {
		return pullRoleOutputs{}, false, nil
	}
	dir, err := pullDirOf(prior.Inputs.PullDir)
	if err != nil {
		return pullRoleOutputs{}, false, err
	}
	if _, err := dir.RoleEnrollKey(prior.Inputs.Role); err != nil {
		// Gone from the pull directory: the next apply makes it again.
		return pullRoleOutputs{}, false, nil
	}
	out, err := roleOutputs(dir, prior.Inputs.Role, seconds(prior.Inputs.GoneAfter))
	return out, err == nil, err
}

// deletePullRole removes the role and its hosts from the pull directory:
// the server no longer answers them, and they keep running what they run.
func deletePullRole(_ context.Context, op *sdk.Op, prior sdk.State[pullRoleInputs, pullRoleOutputs]) error {
	dir, err := pullDirOf(prior.Inputs.PullDir)
	if err != nil {
		return err
	}
	if err := dir.ForgetRole(prior.Inputs.Role); err != nil {
		return err
	}
	op.Logf("removed role %s and its %d host(s) from %s; they keep running what they run", prior.Inputs.Role, len(prior.Outputs.Hosts), dir.Path)
	return nil
}
