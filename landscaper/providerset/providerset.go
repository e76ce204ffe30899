// Package providerset finds provider binaries, starts one plugin process per
// provider for a run, and restarts a provider that died so that members
// not yet applied can still be served.
package providerset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/landscaper-nix/landscaper/landscaper/nixops4provider"
	"github.com/landscaper-nix/landscaper/proto/plugin"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// BinaryPrefix starts the file name of every provider binary.
const BinaryPrefix = "landscaper-provider-"

// Discover lists the provider binaries by provider name: first those next
// to the landscaper binary, then those on PATH.
func Discover() map[string]string {
	found := map[string]string{}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, BinaryPrefix) || e.IsDir() {
				continue
			}
			provider := strings.TrimPrefix(name, BinaryPrefix)
			if _, ok := found[provider]; ok {
				continue
			}
			path := filepath.Join(dir, name)
			if info, err := os.Stat(path); err == nil && info.Mode()&0o111 != 0 {
				found[provider] = path
			}
		}
	}
	return found
}

// Defaults for the zero values of Timeouts.
const (
	DefaultOperationTimeout = 30 * time.Minute
	DefaultCallTimeout      = 5 * time.Minute
	// maxStartTimeout bounds the plugin handshake even when the call
	// timeout is longer: a provider that has not said hello in this time
	// is not going to.
	maxStartTimeout = 30 * time.Second
)

// Timeouts bound how long the engine waits on a provider, so that a
// provider that hangs cannot hang the run. When one expires the call is
// cancelled (the provider sees its context done) and fails with a
// *TimeoutError, whether or not the provider stops.
type Timeouts struct {
	// Operation bounds one create, update or delete. Default
	// DefaultOperationTimeout.
	Operation time.Duration
	// Call bounds each validate, plan, read and schema call, and starting
	// a provider (its handshake gets at most 30 seconds). Default
	// DefaultCallTimeout.
	Call time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Operation <= 0 {
		t.Operation = DefaultOperationTimeout
	}
	if t.Call <= 0 {
		t.Call = DefaultCallTimeout
	}
	return t
}

// TimeoutError is a provider call that did not finish within its timeout.
type TimeoutError struct {
	Provider string
	// Call is what was asked: "create", "plan", "get schema", ...
	Call string
	// After is the timeout that expired; Kind says which ("operation" or
	// "call").
	After time.Duration
	Kind  string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("provider %s: %s did not finish within %s (the %s timeout) and was cancelled", e.Provider, e.Call, e.After, e.Kind)
}

// Unwrap makes a TimeoutError a context.DeadlineExceeded.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Set is the providers of one run.
type Set struct {
	logger   hclog.Logger
	cache    *SchemaCache
	timeouts Timeouts
	// dir is the providers' working directory ("": the engine's).
	dir     string
	mu      sync.Mutex
	entries map[string]*entry
	started atomic.Int64
	closed  bool
}

type entry struct {
	name string
	path string
	// launch starts the provider; nil means a Landscaper plugin at path.
	launch func(ctx context.Context) (running, error)
	mu     sync.Mutex
	client running
	schema *resource.ProviderSchema
}

// running is a started provider: a Landscaper plugin (*plugin.Client) or
// a NixOps4 provider (*nixops4provider.Client).
type running interface {
	resource.Provider
	Exited() bool
	Kill()
	ExplainFailure(error) error
}

// New returns an empty set; logger receives the plugins' logs (nil drops
// them).
func New(logger hclog.Logger) *Set {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Set{logger: logger, entries: map[string]*entry{}, timeouts: Timeouts{}.withDefaults()}
}

// SetTimeouts sets how long the set waits on its providers; zero fields
// take the defaults. Call it before the first Add.
func (s *Set) SetTimeouts(t Timeouts) { s.timeouts = t.withDefaults() }

// SetDir makes the providers run in dir (the deployment's directory), so
// that relative paths in their inputs mean the same whatever the engine's
// working directory. Call it before the first Add.
func (s *Set) SetDir(dir string) { s.dir = dir }

// UseCache makes Add take schemas from cache where it can, starting the
// provider only when it is first called.
func (s *Set) UseCache(cache *SchemaCache) { s.cache = cache }

// Started returns how many plugin processes the set has started.
func (s *Set) Started() int64 { return s.started.Load() }

// Add starts the provider binary at path under name and returns its
// schema. Adding a name again with the same path is a no-op.
func (s *Set) Add(ctx context.Context, name, path string) (*resource.ProviderSchema, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("provider set is closed")
	}
	e, ok := s.entries[name]
	if ok && e.path != path {
		s.mu.Unlock()
		return nil, fmt.Errorf("provider %s is both %s and %s", name, e.path, path)
	}
	if !ok {
		e = &entry{name: name, path: path}
		s.entries[name] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	if e.schema == nil {
		if cached, ok := s.cache.Get(path); ok {
			e.schema = cached
		}
	}
	schema := e.schema
	e.mu.Unlock()
	if schema != nil {
		return schema, nil
	}
	if _, err := s.client(ctx, e); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = s.cache.Put(path, e.schema) // a cache that cannot be written is only slower
	return e.schema, nil
}

// AddNixOps4 adds a NixOps4 provider (protocol v0) under spec.Name and
// returns its schema, which is the types spec declares. Its process is
// started at its first create or update.
func (s *Set) AddNixOps4(ctx context.Context, spec nixops4provider.Spec) (*resource.ProviderSchema, error) {
	if spec.Dir == "" {
		spec.Dir = s.dir
	}
	if _, err := nixops4provider.New(spec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("provider set is closed")
	}
	if e, ok := s.entries[spec.Name]; ok {
		s.mu.Unlock()
		if e.path == spec.Executable && e.launch != nil {
			return spec.Schema(), nil
		}
		return nil, fmt.Errorf("provider %s is both %s and %s", spec.Name, e.path, spec.Executable)
	}
	e := &entry{name: spec.Name, path: spec.Executable, launch: func(context.Context) (running, error) {
		return nixops4provider.New(spec)
	}}
	s.entries[spec.Name] = e
	s.mu.Unlock()
	if _, err := s.client(ctx, e); err != nil {
		return nil, err
	}
	return spec.Schema(), nil
}

// client returns the entry's running plugin, starting it if it is not
// running (first use, or it died).
func (s *Set) client(ctx context.Context, e *entry) (running, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil && !e.client.Exited() {
		return e.client, nil
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("provider set is closed")
	}
	var c running
	var err error
	if e.launch != nil {
		c, err = e.launch(ctx)
	} else {
		c, err = plugin.Launch(ctx, e.path, plugin.LaunchOptions{Logger: s.logger, StartTimeout: min(s.timeouts.Call, maxStartTimeout), Dir: s.dir})
	}
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", e.name, err)
	}
	s.started.Add(1)
	callCtx, stop := withTimeout(ctx, s.timeouts.Call)
	defer stop()
	schema, err := c.GetSchema(callCtx)
	if err != nil {
		c.Kill()
		if ctx.Err() == nil && timedOut(callCtx) {
			return nil, &TimeoutError{Provider: e.name, Call: "get schema", After: s.timeouts.Call, Kind: "call"}
		}
		return nil, fmt.Errorf("provider %s: get schema: %w", e.name, c.ExplainFailure(err))
	}
	if schema.Diagnostics.HasError() {
		c.Kill()
		return nil, fmt.Errorf("provider %s: schema: %w", e.name, schema.Diagnostics.Err())
	}
	e.client, e.schema = c, schema
	return c, nil
}

// Replace stops the provider called name, if any, so that Add can start
// another binary under that name (a deployment's own provider overriding
// a built-in one).
func (s *Set) Replace(name string) {
	s.mu.Lock()
	e, ok := s.entries[name]
	delete(s.entries, name)
	s.mu.Unlock()
	if ok {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.client != nil {
			e.client.Kill()
		}
	}
}

// Schema returns a started provider's schema.
func (s *Set) Schema(name string) (*resource.ProviderSchema, bool) {
	s.mu.Lock()
	e, ok := s.entries[name]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.schema, e.schema != nil
}

// Names returns the names of the providers in the set.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.entries))
	for n := range s.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Path returns the binary of a provider.
func (s *Set) Path(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[name]; ok {
		return e.path
	}
	return ""
}

// Provider returns a resource.Provider for name that restarts the plugin
// if it died and explains transport failures.
func (s *Set) Provider(name string) (resource.Provider, error) {
	s.mu.Lock()
	e, ok := s.entries[name]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("provider %s is not started", name)
	}
	return &restarting{set: s, e: e}, nil
}

// Close stops every plugin and waits for them to exit.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	entries := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.client != nil {
				e.client.Kill()
			}
		}()
	}
	wg.Wait()
}

// restarting calls a provider through the set.
type restarting struct {
	set *Set
	e   *entry
}

// errTimedOut is the cause of a call's context that withTimeout ended.
var errTimedOut = errors.New("provider call timed out")

// withTimeout returns a context that is cancelled after timeout, with
// cause errTimedOut. It has no deadline, on purpose: gRPC would send a
// deadline to the provider, whose side may then end the call with
// DeadlineExceeded before our own timer fires, and the failure would not
// be recognised as our timeout.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(timeout, func() { cancel(errTimedOut) })
	return ctx, func() { timer.Stop(); cancel(nil) }
}

// timedOut reports whether withTimeout's timer ended ctx.
func timedOut(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errTimedOut) }

// call calls a provider through the set: it starts the plugin if it is
// not running, bounds the call by its timeout (the operation timeout for
// create, update and delete, the call timeout for the rest) and explains
// failures.
func call[T any](ctx context.Context, r *restarting, what string, f func(context.Context, resource.Provider) (T, error)) (T, error) {
	var zero T
	c, err := r.set.client(ctx, r.e)
	if err != nil {
		return zero, err
	}
	timeout, kind := r.set.timeouts.Call, "call"
	switch what {
	case "create", "update", "delete", "prepare":
		timeout, kind = r.set.timeouts.Operation, "operation"
	}
	callCtx, stop := withTimeout(ctx, timeout)
	defer stop()
	v, err := f(callCtx, c)
	if err != nil {
		return zero, r.explain(ctx, callCtx, c, err, &TimeoutError{Provider: r.e.name, Call: what, After: timeout, Kind: kind})
	}
	return v, nil
}

// explain says why a call to c made with callCtx (derived from ctx) failed:
// the caller's own cancellation, the timeout (timeout), the plugin gone,
// or the provider's error.
func (r *restarting) explain(ctx, callCtx context.Context, c running, err error, timeout *TimeoutError) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case timedOut(callCtx):
		return timeout
	}
	if st, ok := status.FromError(err); ok && (st.Code() == codes.Unavailable || st.Code() == codes.Canceled) {
		return c.ExplainFailure(err)
	}
	return fmt.Errorf("provider %s: %w", r.e.name, c.ExplainFailure(err))
}

func (r *restarting) GetSchema(ctx context.Context) (*resource.ProviderSchema, error) {
	return call(ctx, r, "get schema", func(ctx context.Context, p resource.Provider) (*resource.ProviderSchema, error) {
		return p.GetSchema(ctx)
	})
}

func (r *restarting) Validate(ctx context.Context, req resource.ValidateRequest) (resource.Diagnostics, error) {
	return call(ctx, r, "validate", func(ctx context.Context, p resource.Provider) (resource.Diagnostics, error) {
		return p.Validate(ctx, req)
	})
}

func (r *restarting) Plan(ctx context.Context, req resource.PlanRequest) (*resource.PlanResponse, error) {
	return call(ctx, r, "plan", func(ctx context.Context, p resource.Provider) (*resource.PlanResponse, error) {
		return p.Plan(ctx, req)
	})
}

func (r *restarting) Create(ctx context.Context, req resource.CreateRequest, sink resource.EventSink) (*resource.Result, error) {
	return call(ctx, r, "create", func(ctx context.Context, p resource.Provider) (*resource.Result, error) {
		return p.Create(ctx, req, sink)
	})
}

func (r *restarting) Update(ctx context.Context, req resource.UpdateRequest, sink resource.EventSink) (*resource.Result, error) {
	return call(ctx, r, "update", func(ctx context.Context, p resource.Provider) (*resource.Result, error) {
		return p.Update(ctx, req, sink)
	})
}

func (r *restarting) Delete(ctx context.Context, req resource.DeleteRequest, sink resource.EventSink) (*resource.Result, error) {
	return call(ctx, r, "delete", func(ctx context.Context, p resource.Provider) (*resource.Result, error) {
		return p.Delete(ctx, req, sink)
	})
}

func (r *restarting) Read(ctx context.Context, req resource.ReadRequest) (*resource.ReadResponse, error) {
	return call(ctx, r, "read", func(ctx context.Context, p resource.Provider) (*resource.ReadResponse, error) {
		return p.Read(ctx, req)
	})
}
