// Package plugin serves and launches Landscaper providers over
// hashicorp/go-plugin: gRPC only, AutoMTLS, a handshake cookie and
// versioned plugin sets, so a future protocol version 2 can live beside 1.
package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// ProtocolVersion is the resource protocol's major version.
const ProtocolVersion = 1

// Handshake is shared by the engine and every provider. The cookie only
// keeps people from running a provider binary by hand by mistake.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "LANDSCAPER_PROVIDER_COOKIE",
	MagicCookieValue: "2f6c0a3e9d1b4c7e8a5f6d2b1c9e7a43",
}

const pluginName = "provider"

// grpcPlugin adapts a resource.Provider to go-plugin.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl   resource.Provider
	logger hclog.Logger
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	resourcev1.RegisterProviderServiceServer(s, &grpcServer{impl: p.impl, logger: p.logger})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newGRPCClient(conn), nil
}

func pluginSets(impl resource.Provider, logger hclog.Logger) map[int]goplugin.PluginSet {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {pluginName: &grpcPlugin{impl: impl, logger: logger}},
	}
}

// Serve runs a provider until the engine closes it. It never returns
// normally. It exits by itself when the engine dies, even by SIGKILL.
func Serve(impl resource.Provider) {
	logger := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.LevelFromString(envOr("LANDSCAPER_PROVIDER_LOG", "info")),
		Output:     os.Stderr,
		JSONFormat: true,
	})
	go exitWhenParentDies(os.Getppid(), time.Second)
	// LANDSCAPER_PROVIDER_CPUPROFILE writes a CPU profile of the
	// provider's run, for performance work (the engine passes its
	// environment on to providers).
	if path := os.Getenv("LANDSCAPER_PROVIDER_CPUPROFILE"); path != "" {
		if f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid())); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(impl, logger),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, serverOptions()...)...)
		},
		Logger: logger,
	})
	pprof.StopCPUProfile()
	os.Exit(0)
}

// exitWhenParentDies is the fallback for the parent-death signal the engine
// asks the kernel for: if we are reparented, the engine is gone.
func exitWhenParentDies(parent int, every time.Duration) {
	for {
		time.Sleep(every)
		if os.Getppid() != parent {
			fmt.Fprintln(os.Stderr, "landscaper provider: engine exited; stopping")
			os.Exit(3)
		}
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// Client is a running provider plugin.
type Client struct {
	// Path is the provider binary.
	Path string
	resource.Provider
	plugin *goplugin.Client
	runner *groupRunner
	stderr *tail
}

// LaunchOptions tune how a plugin is started.
type LaunchOptions struct {
	// Logger receives the plugin's log lines; nil drops them.
	Logger hclog.Logger
	// Env is added to the plugin's environment.
	Env []string
	// StartTimeout bounds the handshake (default 30s).
	StartTimeout time.Duration
	// Dir is the plugin's working directory; empty means the engine's.
	Dir string
}

// Bounds on stopping a plugin. A plugin is asked to shut down, and its
// process group is killed if it has not within stopGrace; once it is
// killed, go-plugin has finished with it within pipeWaitDelay, and
// stopping waits at most killWait for that.
const (
	stopGrace = 3 * time.Second
	killWait  = pipeWaitDelay + 5*time.Second
)

// stop stops a plugin that go-plugin started, or is starting: go-plugin's
// Kill (a shutdown request, then a kill after 2 seconds), with the
// process group killed after grace if that has not ended it (go-plugin's
// shutdown request waits for an answer for as long as the plugin runs,
// and its Kill for the end of go-plugin's start). It returns once
// go-plugin has let go of the plugin, or killWait after the kill.
func stop(pc *goplugin.Client, r *groupRunner, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		pc.Kill()
	}()
	if grace > 0 {
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-done:
			return
		case <-timer.C:
		}
	}
	r.kill()
	timer := time.NewTimer(killWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		// The process group is dead; what go-plugin still waits on it
		// will not keep the engine.
	}
}

// Launch starts the provider binary at path and connects to it.
func Launch(ctx context.Context, path string, opts LaunchOptions) (*Client, error) {
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.Dir != "" {
		var err error
		if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, fmt.Errorf("provider directory %s: %w", opts.Dir, err)
		}
		if strings.ContainsRune(path, filepath.Separator) {
			// A relative binary is found from the engine's directory,
			// not from Dir.
			if path, err = filepath.Abs(path); err != nil {
				return nil, fmt.Errorf("provider binary %s: %w", path, err)
			}
		}
	}
	// go-plugin starts the process through the runner, in a process group
	// of its own (see groupRunner), with the environment it prepared.
	gr := newGroupRunner(path)
	gr.cmd.Dir = opts.Dir
	stderr := newTail(40)
	pc := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(nil, nil),
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			gr.cmd.Env = append(append([]string(nil), spec.Env...), opts.Env...)
			if opts.Dir != "" {
				// What the plugin and the programs it runs see as $PWD.
				gr.cmd.Env = append(gr.cmd.Env, "PWD="+opts.Dir)
			}
			return gr, nil
		},
		GRPCDialOptions:  dialOptions(),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger.Named(filepath.Base(path)),
		Stderr:           stderr,
		SyncStdout:       io.Discard,
		// go-plugin forwards what a provider writes to os.Stderr over the
		// connection, after the fact; keep it with the rest of the tail.
		// (The log package and panics write to the real stderr.)
		SyncStderr:   stderr,
		StartTimeout: opts.StartTimeout,
	})
	type started struct {
		p   resource.Provider
		err error
	}
	done := make(chan started, 1)
	go func() {
		rpc, err := pc.Client()
		if err != nil {
			done <- started{err: err}
			return
		}
		raw, err := rpc.Dispense(pluginName)
		if err != nil {
			done <- started{err: err}
			return
		}
		done <- started{p: raw.(resource.Provider)}
	}()
	select {
	case s := <-done:
		if s.err != nil {
			// go-plugin killed the process group when it gave up; wait
			// a little for the rest of its stderr.
			waitExit(pc, time.Second)
			exited := gr.exitedByItself()
			stop(pc, gr, 0)
			if exited && stderr.String() != "" {
				// go-plugin's own message for this case guesses at wrong
				// architectures and permissions; the provider's last
				// words say more.
				return nil, fmt.Errorf("start provider %s: it exited before the plugin handshake%s", path, stderr.suffix())
			}
			return nil, fmt.Errorf("start provider %s: %w%s", path, s.err, stderr.suffix())
		}
		return &Client{Path: path, Provider: s.p, plugin: pc, runner: gr, stderr: stderr}, nil
	case <-ctx.Done():
		// Kill the process group first: go-plugin's Kill waits for its
		// start, which holds the client's lock until the handshake or the
		// start timeout. Once the group is dead the start ends (its
		// stdout ends), and so does the Kill.
		stop(pc, gr, 0)
		return nil, fmt.Errorf("start provider %s: %w", path, ctx.Err())
	}
}

// Kill stops the plugin: a graceful shutdown request, then SIGKILL of its
// process group after two seconds (or if the request is not answered in
// stopGrace). It returns once the plugin is gone, or killWait after the
// SIGKILL.
func (c *Client) Kill() { stop(c.plugin, c.runner, stopGrace) }

// Exited reports whether the plugin process has ended.
func (c *Client) Exited() bool { return c.runner.hasExited() || c.plugin.Exited() }

// Pid returns the plugin's process id, or 0.
func (c *Client) Pid() int { return c.runner.processID() }

// StderrTail returns the last lines the plugin wrote to stderr.
func (c *Client) StderrTail() string { return c.stderr.String() }

// ExplainFailure turns a transport error into one that says the plugin
// died and shows what it last wrote.
func (c *Client) ExplainFailure(err error) error {
	if err == nil {
		return nil
	}
	if waitExit(c.plugin, 200*time.Millisecond) {
		return fmt.Errorf("provider %s exited unexpectedly: %w%s", filepath.Base(c.Path), err, c.stderr.suffix())
	}
	return err
}

// waitExit gives a crashing plugin up to limit to be reaped (by then
// go-plugin has read all of its stderr) and reports whether it has exited.
func waitExit(pc *goplugin.Client, limit time.Duration) bool {
	for end := time.Now().Add(limit); !pc.Exited() && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	return pc.Exited()
}

// tail keeps the last lines written to it.
type tail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial string
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := strings.Split(t.partial+string(p), "\n")
	t.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, l)
	}
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if t.partial != "" {
		lines = append(lines[:len(lines):len(lines)], t.partial)
	}
	return strings.Join(lines, "\n")
}

func (t *tail) suffix() string {
	s := strings.TrimSpace(t.String())
	if s == "" {
		return ""
	}
	return "\nlast lines of its stderr:\n" + s
}

var _ resource.Preparer = (*Client)(nil)

// Prepare asks the plugin to prepare a coming change (see
// resource.Preparer).
func (c *Client) Prepare(ctx context.Context, req resource.PrepareRequest) (resource.Diagnostics, error) {
	if p, ok := c.Provider.(resource.Preparer); ok {
		return p.Prepare(ctx, req)
	}
	return nil, nil
}

var _ resource.Batcher = (*Client)(nil)

// PlanBatch plans many resources (see resource.Batcher).
func (c *Client) PlanBatch(ctx context.Context, reqs []resource.PlanRequest, parallelism int, each func(int, *resource.PlanResponse, error)) {
	resource.PlanEach(ctx, c.Provider, reqs, parallelism, each)
}

// ReadBatch reads many resources (see resource.Batcher).
func (c *Client) ReadBatch(ctx context.Context, reqs []resource.ReadRequest, parallelism int, each func(int, *resource.ReadResponse, error)) {
	resource.ReadEach(ctx, c.Provider, reqs, parallelism, each)
}
