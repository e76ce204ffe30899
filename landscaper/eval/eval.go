// Package eval evaluates a Landscaper deployment by running the real nix as
// a subprocess (nix-instantiate --eval --json with driver.nix). It reports
// each resource member's type, its inputs with stand-in tokens where an
// output is not known, and the derivations its inputs refer to.
package eval

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// driverFiles are the driver, the module system and `lib` it gives
// module deployments (lib/), and the modules Landscaper ships (modules/).
//
//go:embed driver.nix lib/*.nix modules/*.nix
var driverFiles embed.FS

// Source says where the deployment is.
type Source struct {
	// File is a path to a Nix file holding the deployment function.
	File string
	// Flake is a flake reference whose outputs.landscaper is the deployment.
	Flake string
	// FlakeAttr, when set, names the deployment among the flake's
	// outputs.landscaperDeployments instead (--flake REF#NAME).
	FlakeAttr string
	// ShowTrace passes --show-trace to nix-instantiate, so that an
	// evaluation error carries nix's stack trace.
	ShowTrace bool
}

func (s Source) String() string {
	if s.Flake != "" && s.FlakeAttr != "" {
		return s.Flake + "#landscaperDeployments." + s.FlakeAttr
	}
	if s.Flake != "" {
		return s.Flake + "#landscaper"
	}
	return s.File
}

// Evaluator runs nix on one deployment.
type Evaluator struct {
	source Source
	dir    string
	nix    string
	nonceA string
	nonceB string
	// invocations counts nix processes started.
	invocations atomic.Int64
	// guarded: only the members that can be enumerated while the unknown
	// outputs throw (SetGuarded).
	guarded atomic.Bool
	// masked holds, by member path, the inputs an evaluation with
	// throwing outputs read whole but for the parts that use outputs:
	// later evaluations by this evaluator (the deployment and the values
	// known so far do not change under it) give only those parts.
	maskedMu sync.Mutex
	masked   maskedInputs
}

// SetGuarded makes every later evaluation see only the members that can
// be enumerated without the outputs not known yet: a composite whose
// members are computed from one with code that fails on a stand-in (such
// as builtins.fromJSON) is left out until it is known.
func (e *Evaluator) SetGuarded(on bool) { e.guarded.Store(on) }

// New prepares an evaluator; scratch files go to a private temporary
// directory that Close removes.
func New(source Source) (*Evaluator, error) {
	if source.File != "" {
		abs, err := filepath.Abs(source.File)
		if err != nil {
			return nil, fmt.Errorf("deployment file %s: %w", source.File, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("deployment file: %w", err)
		}
		source.File = abs
	}
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		return nil, fmt.Errorf("nix is needed to evaluate deployments (nix-instantiate not found on PATH): %w", err)
	}
	removeAbandonedScratch()
	dir, err := os.MkdirTemp("", fmt.Sprintf("landscaper-eval-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("eval scratch directory: %w", err)
	}
	if err := writeDriver(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write eval driver: %w", err)
	}
	return &Evaluator{source: source, dir: dir, nix: nix, nonceA: nonce(), nonceB: nonce()}, nil
}

// writeDriver writes the driver and the Nix files it imports into dir.
func writeDriver(dir string) error {
	return fs.WalkDir(driverFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, path), 0o700)
		}
		b, err := driverFiles.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), b, 0o600)
	})
}

// removeAbandonedScratch removes the scratch directories of evaluators
// whose process is gone (killed before it could clean up).
func removeAbandonedScratch() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "landscaper-eval-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "landscaper-eval-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(d)
		}
	}
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Close removes the scratch files.
func (e *Evaluator) Close() error { return os.RemoveAll(e.dir) }

// Invocations returns how many nix processes the evaluator started.
func (e *Evaluator) Invocations() int64 { return e.invocations.Load() }

// Types maps provider name to resource type name to the type's output names.
type Types map[string]map[string][]string

// Request is one evaluation.
type Request struct {
	Types Types
	// Known holds the output values the engine knows, by member path and
	// output name. Every other output is a stand-in token.
	Known map[string]map[string]json.RawMessage
	// Twice evaluates a second time with other tokens, to tell members
	// that compute with a token from those that pass it through.
	Twice bool
	// Only restricts the evaluation of inputs to these member paths.
	Only []string
	// TraceForced makes nix report every token it forces (on stderr).
	TraceForced bool
	// KnownCheck, when set, evaluates the inputs once more with these
	// values (Result.Checked).
	KnownCheck map[string]map[string]json.RawMessage
}

// Member is one resource member as evaluated.
type Member struct {
	Path string `json:"path"`
	Type string `json:"type"`
	// Inputs is the JSON of the inputs with stand-in tokens (spelling A).
	Inputs string `json:"inputs"`
	// Context is the string context of the inputs: store paths and
	// derivations (with the outputs used) that must exist before apply.
	Context map[string]ContextEntry `json:"context"`
}

// ContextEntry is one element of a string context.
type ContextEntry struct {
	Path    bool     `json:"path"`
	AllOut  bool     `json:"allOutputs"`
	Outputs []string `json:"outputs"`
}

// Result is an evaluation's outcome.
type Result struct {
	Members []Member
	// Second holds the inputs of the second evaluation by member path
	// (spelling B), when Twice was asked.
	Second map[string]string
	// Forced lists the tokens nix forced, when TraceForced was asked.
	Forced []string
	// Failing holds, by member path, the parts of the inputs that fail
	// to evaluate when every unknown output throws (with Twice): the
	// parts that use an unknown output, by passing it on or otherwise.
	Failing map[string][]resource.Path
	// Checked holds the inputs evaluated with Request.KnownCheck, by
	// member path.
	Checked map[string]string
	// Alone holds, by path, the members of PlanRequest.Alone the structure
	// found, each evaluated on its own as Trace with WithInputs does.
	Alone map[string]Traced
	// Computing holds the members whose inputs in spelling A show no
	// token intact: every part that uses an unknown output computes with
	// it, whatever spelling B gives, so B was not evaluated for them and
	// Second leaves them out. Those that could not hide a mangled token
	// either are left out of Checked too.
	Computing map[string]bool
}

// SecondFor returns a member's inputs in spelling B, and whether that
// evaluation tells anything about it: false for a member of Computing,
// which is read from spelling A and its failing parts alone.
func (r *Result) SecondFor(path string) (inputs string, have bool, ok bool) {
	if s, in := r.Second[path]; in {
		return s, true, true
	}
	return "", false, r.Computing[path]
}

// Error is a failed evaluation: nix's message, cleaned up.
type Error struct {
	Message string
	// Forced lists tokens forced before the failure, when traced.
	Forced []string
}

func (e *Error) Error() string { return e.Message }

type contextFile struct {
	Mode           string                                `json:"mode"`
	File           string                                `json:"file,omitempty"`
	Flake          *string                               `json:"flake"`
	FlakeAttr      *string                               `json:"flakeAttr"`
	Types          Types                                 `json:"types"`
	Known          map[string]map[string]json.RawMessage `json:"-"`
	KnownFile      *string                               `json:"knownFile"`
	NonceA         string                                `json:"nonceA"`
	NonceB         string                                `json:"nonceB"`
	Twice          bool                                  `json:"twice"`
	Only           []string                              `json:"only"`
	TraceForced    bool                                  `json:"traceForced"`
	Guarded        bool                                  `json:"guarded"`
	TraceKnown     bool                                  `json:"traceKnown"`
	KnownCheck     map[string]map[string]json.RawMessage `json:"-"`
	KnownCheckFile *string                               `json:"knownCheckFile"`
	// checkWithKnown: spelling "k" uses the values of Known.
	checkWithKnown bool
	// Masked: the failing parts of members an earlier evaluation masked
	// (without Twice): only those parts are evaluated.
	Masked map[string][][]json.RawMessage `json:"masked,omitempty"`
	// WithInputs: mode "trace" gives the members' inputs too.
	WithInputs bool `json:"withInputs"`
	// Alone: members mode "plan" evaluates as mode "trace" does (with
	// their inputs), instead of in the spellings.
	Alone []string `json:"alone,omitempty"`
}

var ctxCounter atomic.Int64

// ran is what a run of the driver printed: its output (checked by the
// caller's decoder) and the outputs it forced, on stderr.
type ran struct {
	out    []byte
	forced []string
	// forcedBy holds the outputs forced in mode "trace", by the member
	// whose evaluation forced them.
	forcedBy map[string][]string
}

// run runs the driver. On an error, what it forced before is returned too.
func (e *Evaluator) run(ctx context.Context, cf contextFile) (ran, error) {
	if cf.Types == nil {
		cf.Types = Types{}
	}
	cf.File = e.source.File
	if e.source.Flake != "" {
		f := e.source.Flake
		cf.Flake = &f
		if a := e.source.FlakeAttr; a != "" {
			cf.FlakeAttr = &a
		}
	}
	cf.NonceA, cf.NonceB = e.nonceA, e.nonceB
	cf.Guarded = cf.Guarded || e.guarded.Load()
	n := ctxCounter.Add(1)
	// The known values go to files of their own, which the driver reads
	// only if it looks an output up.
	for _, f := range []struct {
		values map[string]map[string]json.RawMessage
		path   **string
		name   string
	}{{cf.Known, &cf.KnownFile, "known"}, {cf.KnownCheck, &cf.KnownCheckFile, "known-check"}} {
		if f.values == nil {
			continue
		}
		path, err := e.writeJSON(fmt.Sprintf("%s-%d.json", f.name, n), f.values)
		if err != nil {
			return ran{}, err
		}
		defer os.Remove(path)
		*f.path = &path
	}
	if cf.checkWithKnown && cf.KnownFile != nil {
		cf.KnownCheckFile = cf.KnownFile
	}
	path, err := e.writeJSON(fmt.Sprintf("context-%d.json", n), cf)
	if err != nil {
		return ran{}, err
	}
	defer os.Remove(path)
	args := []string{"--eval", "--strict", "--json", "--read-write-mode",
		filepath.Join(e.dir, "driver.nix"), "--arg", "contextFile", path}
	if e.source.Flake != "" {
		args = append(args, "--option", "experimental-features", "nix-command flakes")
	}
	if e.source.ShowTrace {
		args = append(args, "--show-trace")
	}
	cmd := exec.CommandContext(ctx, e.nix, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	e.invocations.Add(1)
	runErr := cmd.Run()
	r := ran{forced: forcedTokens(stderr.String()), forcedBy: forcedByMember(stderr.String())}
	if runErr != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		return r, &Error{Message: cleanNixError(stderr.String(), e.source.String()), Forced: r.forced}
	}
	r.out = stdout.Bytes()
	return r, nil
}

// writeJSON writes v as JSON to a scratch file and returns its path.
func (e *Evaluator) writeJSON(name string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode eval context: %w", err)
	}
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write eval context: %w", err)
	}
	return path, nil
}

// decodeError wraps a failure to decode the driver's output.
func (e *Evaluator) decodeError(mode string, err error) error {
	return fmt.Errorf("decode the evaluation (%s) of %s: %w", mode, e.source, err)
}

var (
	// The rest of the line: a member's name may hold spaces.
	forcedRe   = regexp.MustCompile(`trace: landscaper-forced:([^\n]+)`)
	forcedByRe = regexp.MustCompile(`trace: landscaper-forced-by:([^\n]+)`)
)

// forcedByMember reads mode "trace"'s lines: a JSON list of the member
// evaluated and the output it forced.
func forcedByMember(stderr string) map[string][]string {
	var by map[string][]string
	seen := map[[2]string]bool{}
	for _, m := range forcedByRe.FindAllStringSubmatch(stderr, -1) {
		var pair [2]string
		if err := json.Unmarshal([]byte(m[1]), &pair); err != nil || seen[pair] {
			continue
		}
		seen[pair] = true
		if by == nil {
			by = map[string][]string{}
		}
		by[pair[0]] = append(by[pair[0]], pair[1])
	}
	return by
}

func forcedTokens(stderr string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, m := range forcedRe.FindAllStringSubmatch(stderr, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			keys = append(keys, m[1])
		}
	}
	return keys
}

// cleanNixError keeps nix's error text, drops trace lines and the driver's
// own frames, and strips the "landscaper: " marker of the driver's throws.
func cleanNixError(stderr, source string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "trace: landscaper-forced:") || strings.HasPrefix(l, "trace: landscaper-forced-by:") {
			continue
		}
		lines = append(lines, l)
	}
	msg := strings.TrimSpace(strings.Join(lines, "\n"))
	if i := strings.Index(msg, "landscaper: "); i >= 0 {
		rest := msg[i+len("landscaper: "):]
		if j := strings.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	if msg == "" {
		msg = "nix failed without a message"
	}
	return fmt.Sprintf("evaluating %s:\n%s", source, msg)
}

// Evaluate evaluates the deployment's members.
func (e *Evaluator) Evaluate(ctx context.Context, req Request) (*Result, error) {
	cf := contextFile{Mode: "members", Types: req.Types, Known: req.Known, Twice: req.Twice, Only: req.Only, TraceForced: req.TraceForced, KnownCheck: req.KnownCheck,
		// Members are reached by their paths, among those that can be
		// enumerated while unknown outputs throw: enumerating the others
		// (a composite whose names come from builtins.fromJSON of an
		// output, say) would fail on, or force, a stand-in that the
		// members asked for do not use.
		Guarded: true}
	var earlier maskedInputs
	if !req.Twice {
		earlier = e.maskedFor(req.Only)
		cf.Masked = earlier.failingJSON()
	}
	r, err := e.run(ctx, cf)
	if err != nil {
		return nil, err
	}
	res, masked, err := decodeMembers(r.out, req.Twice, earlier)
	if err != nil {
		return nil, e.decodeError("members", err)
	}
	if req.Twice {
		e.keepMasked(masked)
	}
	res.Forced = r.forced
	return res, nil
}

// PlanRequest asks for the structure and the members in one evaluation:
// Structure with TraceForced, then Evaluate with Twice of the members the
// structure found whose paths hold no stand-in, with Known as KnownCheck.
type PlanRequest struct {
	Types Types
	Known map[string]map[string]json.RawMessage
	// Alone lists members to evaluate as Trace with WithInputs does, with
	// Known, instead of in the spellings (Result.Alone): members whose
	// inputs computed with outputs the last time, whose evaluation with
	// the known values is final when every output it forced keeps the
	// value it was given.
	Alone []string
}

// Plan is Structure, then Evaluate of the members found, in one nix
// invocation (see PlanRequest). It returns the structure, the outputs it
// forced, and the members' evaluation.
func (e *Evaluator) Plan(ctx context.Context, req PlanRequest) ([]Member, []string, *Result, error) {
	cf := contextFile{Mode: "plan", Types: req.Types, Known: req.Known, Twice: true, TraceForced: true, TraceKnown: true, checkWithKnown: len(req.Known) > 0}
	if len(req.Alone) > 0 {
		cf.Alone = slices.Compact(slices.Sorted(slices.Values(req.Alone)))
	}
	r, err := e.run(ctx, cf)
	out, forced := r.out, r.forced
	if err != nil {
		return nil, forced, nil, err
	}
	found, res, masked, err := decodePlan(out, r.forcedBy, cf.Alone)
	if err != nil {
		return nil, forced, nil, e.decodeError("plan", err)
	}
	e.keepMasked(masked)
	return found, forced, res, nil
}

// StructureRequest asks for the deployment's structure: every resource
// member's path and type, without their inputs.
type StructureRequest struct {
	Types Types
	// Known values are used; other outputs are tokens.
	Known map[string]map[string]json.RawMessage
	// Only restricts the evaluation to these member paths.
	Only []string
	// NamesOnly skips the members' types too (Type is empty).
	NamesOnly bool
	// TraceForced reports the outputs the structure forced, known ones
	// too: the outputs that decide which members exist.
	TraceForced bool
}

// Structure evaluates the structure of the deployment.
func (e *Evaluator) Structure(ctx context.Context, req StructureRequest) ([]Member, []string, error) {
	mode := "paths"
	if req.NamesOnly {
		mode = "names"
	}
	r, err := e.run(ctx, contextFile{Mode: mode, Types: req.Types, Known: req.Known, Only: req.Only, TraceForced: req.TraceForced, TraceKnown: req.TraceForced})
	forced := r.forced
	if err != nil {
		return nil, forced, err
	}
	members, err := decodeStructure(r.out, req.NamesOnly)
	if err != nil {
		return nil, forced, e.decodeError(mode, err)
	}
	return members, forced, nil
}

// TraceRequest asks which outputs each of some members forces.
type TraceRequest struct {
	Types Types
	// Known values are given as they are and not reported; every other
	// output is a stand-in token, reported when forced.
	Known map[string]map[string]json.RawMessage
	// Only are the members to trace, by path.
	Only []string
	// WithInputs reports the known values a member forces too, and gives
	// its inputs (Traced.Member): an evaluation that forced no unknown
	// output gave the member's final inputs.
	WithInputs bool
	// Parts, by member path, restricts the trace of a member with masked
	// parts to some of those parts: what they force, not what the others
	// do. Not with WithInputs.
	Parts map[string][]resource.Path
}

// Traced is what one member forced ("member#output" keys, in the order
// forced) and whether its inputs evaluated without a throw.
type Traced struct {
	Forced []string
	OK     bool
	// Member is the member as evaluated, with WithInputs and OK.
	Member *Member
}

// Trace evaluates each member of req.Only on its own, in one nix
// invocation, and reports the outputs each forces: what tracing them one
// invocation at a time would tell. Of a member with parts masked by an
// earlier evaluation, only those parts are evaluated. An error that
// stops the whole evaluation (one tryEval cannot catch, such as
// builtins.fromJSON of a stand-in) is returned as an *Error; trace the
// members one at a time then to learn which one it was.
func (e *Evaluator) Trace(ctx context.Context, req TraceRequest) (map[string]Traced, error) {
	if len(req.Only) == 0 {
		return map[string]Traced{}, nil
	}
	req.Only = slices.Compact(slices.Sorted(slices.Values(req.Only)))
	if req.WithInputs && len(req.Parts) > 0 {
		return nil, errors.New("trace: parts and inputs asked together")
	}
	earlier := e.maskedFor(req.Only)
	r, err := e.run(ctx, contextFile{Mode: "trace", Types: req.Types, Known: req.Known, Only: req.Only, Masked: earlier.partsJSON(req.Parts),
		TraceKnown: req.WithInputs, WithInputs: req.WithInputs})
	if err != nil {
		return nil, err
	}
	out, err := decodeTraced(r, req.WithInputs, earlier)
	if err != nil {
		return nil, e.decodeError("trace", err)
	}
	for _, p := range req.Only {
		if _, ok := out[p]; !ok {
			return nil, e.decodeError("trace", fmt.Errorf("member %s is missing", p))
		}
	}
	return out, nil
}

// decodeTraced decodes mode "trace"'s output; the inputs of members with
// masked parts are put together with what the earlier evaluation read.
func decodeTraced(r ran, withInputs bool, earlier maskedInputs) (map[string]Traced, error) {
	var raw struct {
		Traced json.RawMessage `json:"traced"`
	}
	if err := decodeStrict(r.out, &raw); err != nil {
		return nil, err
	}
	return decodeTracedList(raw.Traced, r.forcedBy, withInputs, earlier)
}

// decodeTracedList decodes the list of members mode "trace" evaluated
// (mode "plan" gives one too, for PlanRequest.Alone).
func decodeTracedList(list json.RawMessage, forcedBy map[string][]string, withInputs bool, earlier maskedInputs) (map[string]Traced, error) {
	var traced []struct {
		Path string `json:"path"`
		OK   bool   `json:"ok"`
		// With inputs: the member as mode "members" gives it.
		Type    *string                 `json:"type"`
		Inputs  *string                 `json:"inputs"`
		Context map[string]ContextEntry `json:"context"`
		Parts   *bool                   `json:"parts"`
	}
	if err := decodeStrict(list, &traced); err != nil {
		return nil, err
	}
	out := make(map[string]Traced, len(traced))
	for _, t := range traced {
		if err := checkMemberPath(t.Path); err != nil {
			return nil, err
		}
		if _, dup := out[t.Path]; dup {
			return nil, fmt.Errorf("member %s appears twice", t.Path)
		}
		tr := Traced{Forced: forcedBy[t.Path], OK: t.OK}
		if given := t.Inputs != nil; given != (withInputs && t.OK) || (t.Type != nil) != given || (t.Parts != nil) != given {
			return nil, fmt.Errorf("member %s: inputs given %v, asked for %v", t.Path, given, withInputs && t.OK)
		}
		if t.Inputs != nil {
			m := Member{Path: t.Path, Type: *t.Type, Inputs: *t.Inputs, Context: t.Context}
			if *t.Parts {
				var err error
				if m.Inputs, m.Context, err = earlier.splice("the trace", m.Path, m.Inputs, m.Context); err != nil {
					return nil, err
				}
			}
			if err := decodeMember(m, false); err != nil {
				return nil, err
			}
			if err := decodeInputs("the trace", m.Path, m.Inputs); err != nil {
				return nil, err
			}
			if err := checkContext("member "+m.Path, m.Context); err != nil {
				return nil, err
			}
			tr.Member = &m
		}
		out[t.Path] = tr
	}
	return out, nil
}

// FailingFor returns the failing parts of a member's inputs; a member
// inside a composite whose definition needs an unknown output fails whole.
func (r *Result) FailingFor(path string) []resource.Path {
	failing := r.Failing[path]
	// The composites holding it: each prefix of its path that ends before
	// a dot (looked up one by one, not by going through every entry).
	for i := range len(path) {
		if path[i] != '.' {
			continue
		}
		for _, p := range r.Failing[path[:i]] {
			if len(p) == 0 {
				return append(failing, nil)
			}
		}
	}
	return failing
}

// DeclaredProvider is a provider the deployment declares.
type DeclaredProvider struct {
	Executable string                  `json:"executable"`
	Context    map[string]ContextEntry `json:"context"`
	// Protocol is "nixops4" for a NixOps4 provider, empty (or
	// "landscaper") for a Landscaper one.
	Protocol string `json:"protocol,omitempty"`
	// Args start a NixOps4 provider.
	Args []string `json:"args,omitempty"`
	// ResourceTypes are a NixOps4 provider's types, which its protocol
	// cannot tell.
	ResourceTypes map[string]DeclaredType `json:"resourceTypes,omitempty"`
}

// DeclaredType is a resource type of a NixOps4 provider, as the deployment
// declares it.
type DeclaredType struct {
	Description  string   `json:"description"`
	Inputs       []string `json:"inputs"`
	Outputs      []string `json:"outputs"`
	RequireState bool     `json:"requireState"`
}

// DeclaredProviders evaluates the deployment's own providers.
func (e *Evaluator) DeclaredProviders(ctx context.Context, types Types) (map[string]DeclaredProvider, error) {
	d, err := e.Declarations(ctx, types)
	if err != nil {
		return nil, err
	}
	return d.Providers, nil
}

// Declarations are what a deployment declares besides its members.
type Declarations struct {
	Providers map[string]DeclaredProvider
	Rollouts  map[string]Rollout
}

// Declarations evaluates the deployment's own providers and its rollouts.
func (e *Evaluator) Declarations(ctx context.Context, types Types) (*Declarations, error) {
	r, err := e.run(ctx, contextFile{Mode: "providers", Types: types})
	if err != nil {
		return nil, err
	}
	providers, err := decodeProviders(r.out)
	if err != nil {
		return nil, e.decodeError("providers", err)
	}
	rollouts, err := decodeRollouts(r.out)
	if err != nil {
		return nil, err
	}
	return &Declarations{Providers: providers, Rollouts: rollouts}, nil
}

// Realise builds the derivations in a string context (nix-store
// --realise), so the store paths an input names exist before apply.
func (e *Evaluator) Realise(ctx context.Context, c map[string]ContextEntry) error {
	var drvs []string
	for path, entry := range c {
		if !strings.HasSuffix(path, ".drv") || (!entry.AllOut && len(entry.Outputs) == 0) {
			continue
		}
		if entry.AllOut || len(entry.Outputs) == 0 {
			drvs = append(drvs, path)
			continue
		}
		drvs = append(drvs, path+"!"+strings.Join(entry.Outputs, ","))
	}
	if len(drvs) == 0 {
		return nil
	}
	store, err := exec.LookPath("nix-store")
	if err != nil {
		return fmt.Errorf("nix-store not found: %w", err)
	}
	cmd := exec.CommandContext(ctx, store, append([]string{"--realise", "--quiet"}, drvs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	e.invocations.Add(1)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("build %s: %w\n%s", strings.Join(drvs, " "), err, tailLines(stderr.String(), 20))
	}
	return nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ErrNoDeployment is returned when there is no deployment to evaluate.
var ErrNoDeployment = errors.New("no deployment: give --file PATH or create ./landscaper.nix")

// keepMasked remembers the masked members of an evaluation with Twice.
func (e *Evaluator) keepMasked(m maskedInputs) {
	e.maskedMu.Lock()
	defer e.maskedMu.Unlock()
	if e.masked == nil {
		e.masked = maskedInputs{}
	}
	maps.Copy(e.masked, m)
}

// maskedFor returns the masked members among only (all when nil).
func (e *Evaluator) maskedFor(only []string) maskedInputs {
	e.maskedMu.Lock()
	defer e.maskedMu.Unlock()
	out := maskedInputs{}
	if only == nil {
		maps.Copy(out, e.masked)
		return out
	}
	for _, p := range only {
		if m, ok := e.masked[p]; ok {
			out[p] = m
		}
	}
	return out
}
