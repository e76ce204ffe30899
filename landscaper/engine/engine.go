// Package engine plans and applies a Landscaper deployment: it evaluates
// the deployment with nix, builds the dependency graph from the stand-in
// tokens in each member's inputs, asks the providers for plans, and applies
// the changes in dependency order with bounded parallelism, recording state
// after every result.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/landscaper-nix/landscaper/internal/redact"
	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/nixops4provider"
	"github.com/landscaper-nix/landscaper/landscaper/providerset"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Options configure an engine.
type Options struct {
	// Source is the deployment; it may be empty for commands that only
	// need the state (destroy, state ...).
	Source      eval.Source
	Backend     state.Backend
	LockInfo    state.LockInfo
	LockTimeout time.Duration
	// Parallelism bounds concurrent provider operations (default 10).
	Parallelism int
	// Targets restricts the run to these members and what they need.
	Targets []string
	// Replace names members to replace although their inputs did not
	// change (Terraform's -replace); what depends on their outputs is
	// planned again with the new values.
	Replace []string
	// NoRefresh skips asking providers what exists before planning.
	NoRefresh bool
	// Build realises the derivations a member's inputs name before its
	// provider plans it (plan --build), so a provider can tell what the
	// built paths change (a NixOS system's packages). Apply always builds
	// before it creates or updates.
	Build bool
	// Describe asks providers to tell what each change does (a NixOS
	// system's package changes) while planning: a person reads this plan.
	// It may cost them time (reading hosts); apply --auto-approve
	// leaves it off.
	Describe bool
	Observer Observer
	// Builtins maps provider names to binaries (providerset.Discover).
	Builtins map[string]string
	// Logger receives the plugins' logs; nil drops them.
	Logger hclog.Logger
	// SchemaCache, when set, lets a run start only the providers it uses.
	SchemaCache *providerset.SchemaCache
	// OperationTimeout bounds each create, update and delete, CallTimeout
	// starting a provider and each of its plan, read and schema calls
	// (defaults: providerset.DefaultOperationTimeout, DefaultCallTimeout).
	// A call that runs out fails its member; an operation's pending record
	// stays for the next run to settle.
	OperationTimeout time.Duration
	CallTimeout      time.Duration
	// Dir is the deployment's directory, where the providers run: a
	// relative path in a member's inputs is relative to it, whatever the
	// engine's working directory. Empty means Source's (Source.Dir), or
	// the engine's when that is empty too.
	Dir string
	// Timeline, when set, receives a line at the end of each phase of
	// the run (LANDSCAPER_TIMELINE=1 sends it to stderr).
	Timeline io.Writer
	// StartEarly starts the built-in providers and evaluates the
	// deployment's declarations while Open reads the state, for a command
	// that plans the deployment next (Plan).
	StartEarly bool
}

// Engine runs one command against one deployment and state.
type Engine struct {
	opts      Options
	timeline  *timeline
	observer  Observer
	unlock    func() error
	state     *state.State
	providers *providerset.Set
	evaluator *eval.Evaluator
	redact    *redact.Set
	// early is what Open began for Plan (Options.StartEarly).
	early *providerStart

	// Filled while planning.
	mu      sync.Mutex
	types   eval.Types
	schemas map[string]*resource.TypeSchema // full type name -> schema
	// declared providers: name -> executable
	declared map[string]string
	members  map[string]*member
	// claims holds what the planned members claim, and who claims it.
	claims map[claimKey]string
	tokens *eval.Tokens
	values map[eval.Key]eval.Value
	// evaluateAgain holds members whose inputs, evaluated with the real
	// values after an apply, differed from substitution: they compute with
	// outputs in a way the token evaluations did not show.
	evaluateAgain map[string]bool
	// structureForced holds the outputs the last structure evaluation
	// forced: those that decide which members exist.
	structureForced map[eval.Key]bool
	// structureAssumed holds the known values the structure was evaluated
	// with, of the outputs it forced.
	structureAssumed map[eval.Key]json.RawMessage
	// noSpeculation turns off speculative planning (after it failed once).
	noSpeculation bool
	// rollouts are the declared rollouts by name; rolloutIndex places
	// each rollout member.
	rollouts     map[string]*eval.Rollout
	rolloutIndex map[string]rolloutPos
	// settled lists members whose interrupted operations were settled in
	// memory; an apply writes the result even when it changes nothing else.
	settled []string
	// upgraded lists members whose records the providers upgraded to a
	// newer schema version while refreshing; an apply writes them even
	// when it changes nothing else.
	upgraded []string
	// refreshedOnly holds, for PlanRefreshOnly, the records that refreshing
	// changed (nil: the member is gone), for SaveRefresh to write.
	refreshedOnly map[string]*state.Resource
}

// HasUnsaved reports whether the state in memory holds something the
// recorded state does not, with nothing to apply: interrupted operations
// settled, records upgraded by their providers, or dependencies that
// changed. Apply saves it.
func (e *Engine) HasUnsaved() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.settled) > 0 || len(e.upgraded) > 0 {
		return true
	}
	for p, m := range e.members {
		if r := e.state.Resources[p]; r != nil && !slices.Equal(r.Dependencies, m.deps) {
			return true
		}
	}
	return false
}

// Open locks the state and reads it.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 10
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.Dir == "" {
		opts.Dir = opts.Source.Dir()
	}
	tl := newTimeline(opts.Timeline)
	unlock, err := opts.Backend.Lock(ctx, opts.LockInfo, opts.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	e := &Engine{
		opts: opts, timeline: tl, observer: opts.Observer, unlock: unlock,
		providers: newProviderSet(opts), redact: &redact.Set{},
		schemas: map[string]*resource.TypeSchema{}, declared: map[string]string{},
		members: map[string]*member{}, values: map[eval.Key]eval.Value{},
		evaluateAgain: map[string]bool{},
	}
	if opts.StartEarly {
		// Neither needs the state: start them while it is read (a state of
		// 10,000 members takes as long to decode as the providers to start).
		if ev, err := eval.New(opts.Source); err == nil {
			e.evaluator = ev
			e.early = e.launchProviders(ctx)
		}
	}
	st, err := opts.Backend.Read(ctx)
	if err != nil {
		_ = e.Close() // stops what started early, and unlocks
		return nil, fmt.Errorf("read state: %w", err)
	}
	tl.mark("state read (%d resources)", len(st.Resources))
	e.state = st
	for _, r := range st.Resources {
		e.learnSecrets(r)
	}
	return e, nil
}

func newProviderSet(opts Options) *providerset.Set {
	s := providerset.New(opts.Logger)
	s.UseCache(opts.SchemaCache)
	s.SetTimeouts(providerset.Timeouts{Operation: opts.OperationTimeout, Call: opts.CallTimeout})
	s.SetDir(opts.Dir)
	return s
}

// State returns the state as read (and refreshed, after a plan).
func (e *Engine) State() *state.State { return e.state }

// Close stops the providers, removes scratch files and releases the lock.
func (e *Engine) Close() error {
	if e.early != nil {
		// Providers still starting would outlive the set's Close.
		e.early.wait()
		e.early = nil
	}
	e.providers.Close()
	if e.evaluator != nil {
		_ = e.evaluator.Close()
	}
	if e.unlock != nil {
		return e.redactError(e.unlock())
	}
	return nil
}

// Stats are figures about a run, for benchmarks and --json.
type Stats struct {
	NixInvocations  int64
	PluginProcesses int64
}

// Stats returns the run's figures so far.
func (e *Engine) Stats() Stats {
	s := Stats{PluginProcesses: e.providers.Started()}
	if e.evaluator != nil {
		s.NixInvocations = e.evaluator.Invocations()
	}
	return s
}

func (e *Engine) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.observer.Event(ev)
}

// learnSecrets remembers a resource's sensitive values for redaction.
func (e *Engine) learnSecrets(r *state.Resource) {
	for _, p := range r.SensitiveOutputs {
		e.learnSecretAt(r.Outputs, p)
	}
	for _, p := range r.SensitiveInputs {
		e.learnSecretAt(r.Inputs, p)
	}
}

// learnSecretAt remembers every string under p in doc for redaction (a
// value without strings as its JSON text).
func (e *Engine) learnSecretAt(doc json.RawMessage, p resource.Path) {
	if v, ok := resource.Lookup(doc, p); ok {
		e.redact.AddJSON(v)
	}
}

// providerStart is the built-in providers being started and the
// deployment's declarations being evaluated, begun by launchProviders and
// finished by startProviders.
type providerStart struct {
	names    []string
	results  chan startedProvider
	declDone chan struct{}
	declared map[string]eval.DeclaredProvider
	declErr  error
}

type startedProvider struct {
	name   string
	schema *resource.ProviderSchema
	err    error
}

// launchProviders starts the built-in providers and evaluates the
// deployment's declarations, in the background.
func (e *Engine) launchProviders(ctx context.Context) *providerStart {
	ps := &providerStart{declDone: make(chan struct{})}
	for n := range e.opts.Builtins {
		ps.names = append(ps.names, n)
	}
	sort.Strings(ps.names)
	ps.results = make(chan startedProvider, len(ps.names))
	for _, n := range ps.names {
		go func() {
			s, err := e.providers.Add(ctx, n, e.opts.Builtins[n])
			ps.results <- startedProvider{n, s, err}
		}()
	}
	go func() {
		defer close(ps.declDone)
		d, err := e.evaluator.Declarations(ctx, nil)
		if err != nil {
			ps.declErr = err
			return
		}
		ps.declared = d.Providers
		e.setRollouts(d.Rollouts)
	}()
	return ps
}

// wait waits until everything launchProviders began has ended.
func (ps *providerStart) wait() []startedProvider {
	started := make([]startedProvider, 0, len(ps.names))
	for range ps.names {
		started = append(started, <-ps.results)
	}
	<-ps.declDone
	slices.SortFunc(started, func(a, b startedProvider) int { return strings.Compare(a.name, b.name) })
	return started
}

// startProviders starts the built-in providers (all of them: their types
// make up the `providers` argument of the deployment) and those the
// deployment declares. Open may have begun it (Options.StartEarly).
func (e *Engine) startProviders(ctx context.Context) error {
	ps := e.early
	e.early = nil
	if ps == nil {
		ps = e.launchProviders(ctx)
	}
	started := ps.wait() // once: it drains what was launched
	declared, declErr := ps.declared, ps.declErr
	var errs []error
	types := eval.Types{}
	for _, r := range started {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		e.addTypes(types, r.name, r.schema)
	}
	if declErr != nil {
		errs = append(errs, declErr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	dnames := make([]string, 0, len(declared))
	for n := range declared {
		dnames = append(dnames, n)
	}
	sort.Strings(dnames)
	for _, n := range dnames {
		d := declared[n]
		if err := e.evaluator.Realise(ctx, d.Context); err != nil {
			return fmt.Errorf("provider %s: %w", n, err)
		}
		if _, builtin := e.opts.Builtins[n]; builtin && e.opts.Builtins[n] != d.Executable {
			// The deployment's own provider replaces the built-in one.
			e.providers.Replace(n)
			for t := range types[n] {
				delete(e.schemas, n+"."+t)
			}
		}
		var s *resource.ProviderSchema
		var err error
		if d.Protocol == "nixops4" {
			s, err = e.providers.AddNixOps4(ctx, nixops4Spec(n, d))
		} else {
			s, err = e.providers.Add(ctx, n, d.Executable)
		}
		if err != nil {
			return err
		}
		e.declared[n] = d.Executable
		e.addTypes(types, n, s)
	}
	e.types = types
	return nil
}

// nixops4Spec is how a declared NixOps4 provider is run.
func nixops4Spec(name string, d eval.DeclaredProvider) nixops4provider.Spec {
	spec := nixops4provider.Spec{Name: name, Executable: d.Executable, Args: d.Args, Types: map[string]nixops4provider.Type{}}
	for t, dt := range d.ResourceTypes {
		spec.Types[t] = nixops4provider.Type{Description: dt.Description, Inputs: dt.Inputs, Outputs: dt.Outputs, RequireState: dt.RequireState}
	}
	return spec
}

func (e *Engine) addTypes(types eval.Types, provider string, s *resource.ProviderSchema) {
	types[provider] = map[string][]string{}
	for t, ts := range s.Types {
		outs := make([]string, 0, len(ts.Outputs))
		for _, o := range ts.Outputs {
			outs = append(outs, o.Name)
		}
		types[provider][t] = outs
		e.schemas[provider+"."+t] = ts
	}
}

// providerFor returns the provider of a full type name ("local.file").
func (e *Engine) providerFor(typ string) (string, resource.Provider, error) {
	name, _, ok := strings.Cut(typ, ".")
	if !ok {
		return "", nil, fmt.Errorf("bad resource type %q", typ)
	}
	p, err := e.providers.Provider(name)
	return name, p, err
}

// providerForRecord starts (if needed) the provider that made a recorded
// resource: a built-in by name, or the executable the state remembers.
func (e *Engine) providerForRecord(ctx context.Context, r *state.Resource) (resource.Provider, error) {
	name := r.Provider
	if _, ok := e.providers.Schema(name); !ok {
		path := r.ProviderPath
		if path == "" {
			path = e.opts.Builtins[name]
		}
		if path == "" {
			return nil, fmt.Errorf("provider %s is not installed (looked next to landscaper and on PATH)", name)
		}
		s, err := e.providers.Add(ctx, name, path)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		if e.types == nil {
			e.types = eval.Types{}
		}
		e.addTypes(e.types, name, s)
		e.mu.Unlock()
	}
	return e.providers.Provider(name)
}

// MemberError is an error about one member.
type MemberError struct {
	Member string
	Type   string
	Err    error
}

func (e *MemberError) Error() string {
	if strings.HasPrefix(e.Err.Error(), "member "+e.Member+":") || strings.HasPrefix(e.Err.Error(), "member "+e.Member+" ") {
		return e.Err.Error()
	}
	if e.Type != "" {
		return fmt.Sprintf("member %s (%s): %v", e.Member, e.Type, e.Err)
	}
	return fmt.Sprintf("member %s: %v", e.Member, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

// diagError turns error diagnostics into an error naming input paths as
// inputs.<path>.
func diagError(ds resource.Diagnostics) error {
	var msgs []string
	for _, d := range ds {
		if d.Severity != resource.SeverityError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if len(d.Attribute) > 0 {
			msg = "inputs." + d.Attribute.String() + ": " + msg
		}
		msgs = append(msgs, msg)
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}
