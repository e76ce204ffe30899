// Package cli is the landscaper command line: it parses flags, wires the
// engine, state, providers and display together, and maps outcomes to exit
// codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/providerset"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/landscaper/state/pgstate"
	"github.com/landscaper-nix/landscaper/landscaper/ui"
)

// Version is the landscaper version, set at build time.
var Version = "0.1.0-dev"

// Env is what a command sees of the world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// IsTerminal reports whether stdin and stdout are terminals.
	IsTerminal bool
	Getenv     func(string) string
	// NoColor turns colours off (--no-color), as NO_COLOR does.
	NoColor bool
	// Details shows every line providers tell of a change (--details).
	Details bool
}

// System returns the process's own environment.
func System() Env {
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		IsTerminal: term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())),
		Getenv:     os.Getenv,
	}
}

// exitError carries an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Unwrap() error { return e.err }

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

const usage = `Usage: landscaper [--chdir DIR] <command> [flags] [arguments]

Commands:
  plan       show what apply would change
  apply      make the world match the deployment
  destroy    delete everything the state records
  validate   check the deployment against the providers' schemas, changing
             and contacting nothing
  output     print members' outputs from the recorded state
  graph      print the members and their dependencies as a DOT graph
  show       show a plan saved by plan --out
  state      list | show MEMBER | mv OLD NEW | rm MEMBER... | push PLACE |
             pull PLACE: read, edit and move the recorded state (PLACE: a
             postgres:// URL or a file)
  providers  show the providers' schemas
  provider   schema | call: drive one provider by hand
  serve      serve network boot entries over TFTP and HTTP (and, with
             --pull-dir, the pull API)
  agent      on a pulled host: fetch, activate and report its system
  version    print the version
  help       print this, or "help COMMAND" a command's usage

Global flags, before the command:
  --chdir DIR  switch to the directory DIR before anything else (Terraform's
               -chdir); every path, the deployment's and the state's, is
               then relative to DIR
  --no-color   print without colours (as each command's --no-color and
               NO_COLOR=1 do)
  --version    print the version

Run "landscaper <command> --help" for a command's flags and arguments.
`

// Main runs the command line and returns the exit code.
func Main(args []string, env Env) int {
	ctx, stop := signalContext(env)
	defer stop()
	err := run(ctx, args, env)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(env.Stderr, "Error: %s\n", termsafe.Text(ee.err.Error()))
		}
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(env.Stderr, "Error: %s\n", termsafe.Text(err.Error()))
	return 1
}

// signalContext is cancelled by the first SIGINT or SIGTERM; the run then
// stops its operations, saves state and stops the providers. A second
// signal exits at once: every result is recorded already, and operations in
// flight have pending records the next run settles.
func signalContext(env Env) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(env.Stderr, "\nInterrupted: stopping what is in flight (interrupt again to quit at once)...")
		cancel()
		select {
		case <-ch:
			fmt.Fprintln(env.Stderr, "Quitting now; the next run settles what was in flight.")
			os.Exit(130)
		case <-time.After(time.Hour):
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func run(ctx context.Context, args []string, env Env) error {
	global := flag.NewFlagSet("landscaper", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	chdir := global.String("chdir", "", "")
	showVersion := global.Bool("version", false, "")
	global.BoolVar(showVersion, "v", false, "")
	global.BoolVar(&env.NoColor, "no-color", env.NoColor, "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, usage)
			return err
		}
		fmt.Fprint(env.Stderr, usage+"\n")
		return &exitError{code: 2, err: withFlagSuggestion(global, err)}
	}
	args = global.Args()
	if *chdir != "" {
		// Before anything else: every relative path (the deployment, the
		// state) is then taken from the new directory.
		if err := os.Chdir(*chdir); err != nil {
			return fmt.Errorf("--chdir: %w", err)
		}
	}
	if *showVersion {
		fmt.Fprintf(env.Stdout, "landscaper %s\n", Version)
		return nil
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return &exitError{code: 2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "plan":
		return runPlan(ctx, rest, env)
	case "apply":
		return runApply(ctx, rest, env, false)
	case "destroy":
		return runApply(ctx, rest, env, true)
	case "validate":
		return runValidate(ctx, rest, env)
	case "output":
		return runOutput(ctx, rest, env)
	case "graph":
		return runGraph(ctx, rest, env)
	case "show":
		return runShow(ctx, rest, env)
	case "state":
		return runState(ctx, rest, env)
	case "providers":
		return runProviders(ctx, rest, env)
	case "provider":
		return runProvider(ctx, rest, env)
	case "serve":
		return runServe(ctx, rest, env)
	case "agent":
		return runAgent(ctx, rest, env)
	case "version":
		return runVersion(rest, env)
	case "help":
		if len(rest) == 0 {
			fmt.Fprint(env.Stdout, usage)
			return nil
		}
		// "help state show" is "state show --help".
		return run(ctx, append(append([]string{}, rest...), "--help"), env)
	}
	fmt.Fprint(env.Stderr, usage+"\n")
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q%s", cmd, didYouMean(cmd, commandNames()))}
}

var versionSpec = spec{name: "version", about: "Print the version of landscaper.", max: 0}

func runVersion(args []string, env Env) error {
	fs := versionSpec.flags()
	noColorFlag(fs, &env)
	if _, err := versionSpec.parse(fs, args, env); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "landscaper %s\n", Version)
	return nil
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// common holds the flags of the commands that read a deployment or its
// state. Each command registers the ones it takes, described for it.
type common struct {
	file        string
	flake       string
	statePath   string
	lockTimeout time.Duration
	parallelism int
	targets     multiFlag
	replace     multiFlag
	json        bool
	noRefresh   bool
	// build realises the derivations members name before planning them.
	build bool
	// describe asks providers what each change does (engine.Options).
	describe bool
	// showTrace passes --show-trace to nix-instantiate.
	showTrace bool
	// operationTimeout and callTimeout bound how long a provider may take.
	operationTimeout time.Duration
	callTimeout      time.Duration
}

// newCommon returns the flags' defaults.
func newCommon() common {
	return common{parallelism: 10, operationTimeout: providerset.DefaultOperationTimeout, callTimeout: providerset.DefaultCallTimeout}
}

// sourceFlags registers --file and --flake; use says what the command
// does with the deployment.
func (c *common) sourceFlags(fs *flag.FlagSet, use string) {
	fs.StringVar(&c.file, "file", "", "the deployment `file` "+use+" (default ./landscaper.nix)")
	fs.StringVar(&c.flake, "flake", "", "a flake `ref` whose outputs.landscaper is the deployment "+use+"; REF#NAME: its outputs.landscaperDeployments.NAME")
}

// stateFlag registers --state; use says what the command does with it.
func (c *common) stateFlag(fs *flag.FlagSet, use string) {
	fs.StringVar(&c.statePath, "state", "", "the state "+use+": a file (default .landscaper/state.json beside the deployment, .landscaper/deployments/NAME/state.json for --flake REF#NAME) or a postgres:// URL; also LANDSCAPER_STATE")
}

func (c *common) lockFlag(fs *flag.FlagSet) {
	fs.DurationVar(&c.lockTimeout, "lock-timeout", 0, "how long to wait for the state lock (e.g. 30s; default 0: fail at once if another run holds it)")
}

func (c *common) traceFlag(fs *flag.FlagSet) {
	fs.BoolVar(&c.showTrace, "show-trace", false, "show nix's stack trace of an evaluation error (nix-instantiate --show-trace)")
}

func (c *common) callTimeoutFlag(fs *flag.FlagSet) {
	fs.DurationVar(&c.callTimeout, "call-timeout", c.callTimeout, "the longest a provider may take to start, or to answer a call")
}

// deploymentFlags registers the flags of plan, apply and destroy, each
// described for the command.
func (c *common) deploymentFlags(fs *flag.FlagSet, command string) {
	switch command {
	case "destroy":
		c.sourceFlags(fs, "whose state to destroy; only used to find the state")
		c.stateFlag(fs, "to destroy")
		fs.BoolVar(&c.json, "json", false, "print the plan, progress and summary as JSON lines instead of text")
		fs.DurationVar(&c.operationTimeout, "operation-timeout", c.operationTimeout, "the longest a provider may take to delete one member; then it is cancelled and the member fails")
		fs.DurationVar(&c.callTimeout, "call-timeout", c.callTimeout, "the longest a provider may take to start, or to answer a read")
		fs.IntVar(&c.parallelism, "parallelism", c.parallelism, "how many deletions may run at once")
		fs.Var(&c.targets, "target", "destroy only this `member` and the members that depend on it (repeatable)")
		fs.BoolFunc("refresh", "accepted for Terraform's sake and ignored: destroy plans from the recorded state alone", func(v string) error {
			_, err := strconv.ParseBool(v)
			return err
		})
	case "plan":
		c.sourceFlags(fs, "to plan")
		c.stateFlag(fs, "to plan against")
		fs.BoolVar(&c.json, "json", false, "print progress and the plan as JSON lines instead of text")
		fs.DurationVar(&c.operationTimeout, "operation-timeout", c.operationTimeout, "the longest a provider may take for one create, update or delete (an apply's limit; plan runs none, but checks the value)")
		fs.DurationVar(&c.callTimeout, "call-timeout", c.callTimeout, "the longest a provider may take to start, or to answer a plan or read")
		fs.IntVar(&c.parallelism, "parallelism", c.parallelism, "how many members may be planned and refreshed at once")
		fs.Var(&c.targets, "target", "plan only this `member` and what it needs (repeatable)")
		fs.Var(&c.replace, "replace", "plan to replace this `member` although its inputs did not change; what depends on it follows (repeatable)")
		fs.BoolVar(&c.build, "build", false, "build the derivations members' inputs name before asking their providers, so the plan can tell what changes inside them (a NixOS system's packages)")
		c.refreshFlag(fs, "planning")
		c.traceFlag(fs)
	default: // apply
		c.sourceFlags(fs, "to apply")
		c.stateFlag(fs, "to apply to")
		fs.BoolVar(&c.json, "json", false, "print the plan, progress and summary as JSON lines instead of text")
		fs.DurationVar(&c.operationTimeout, "operation-timeout", c.operationTimeout, "the longest a provider may take to create, update or delete one member; then it is cancelled and the member fails")
		fs.DurationVar(&c.callTimeout, "call-timeout", c.callTimeout, "the longest a provider may take to start, or to answer a plan or read")
		fs.IntVar(&c.parallelism, "parallelism", c.parallelism, "how many operations may run at once")
		fs.Var(&c.targets, "target", "apply only this `member` and what it needs (repeatable)")
		fs.Var(&c.replace, "replace", "replace this `member` although its inputs did not change; what depends on it follows (repeatable)")
		c.refreshFlag(fs, "applying")
		c.traceFlag(fs)
	}
	c.lockFlag(fs)
}

func (c *common) refreshFlag(fs *flag.FlagSet, before string) {
	fs.BoolFunc("refresh", "ask providers what exists before "+before+" (default true; -refresh=false trusts the state)", func(v string) error {
		on, err := strconv.ParseBool(v)
		c.noRefresh = !on
		return err
	})
}

// check checks the flags' values.
func (c *common) check() error {
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--operation-timeout", c.operationTimeout}, {"--call-timeout", c.callTimeout}} {
		if d.value <= 0 {
			return fmt.Errorf("%s must be positive, got %s", d.flag, d.value)
		}
	}
	return nil
}

// source finds the deployment.
func (c *common) source() (eval.Source, string, error) {
	if c.flake != "" {
		return c.flakeSource()
	}
	file := c.file
	if file == "" {
		file = "landscaper.nix"
		if _, err := os.Stat(file); err != nil {
			return eval.Source{}, "", eval.ErrNoDeployment
		}
	}
	return eval.Source{File: file, ShowTrace: c.showTrace}, filepath.Dir(file), nil
}

func (c *common) backend(env Env, dir string) state.Backend {
	path := c.statePath
	if path == "" {
		path = env.Getenv("LANDSCAPER_STATE")
	}
	if path == "" {
		path = c.defaultStatePath(dir)
	}
	return openBackend(path)
}

// defaultStatePath is the state file beside the deployment in dir: each of
// a flake's landscaperDeployments (--flake REF#NAME) has its own.
func (c *common) defaultStatePath(dir string) string {
	if _, attr, ok := strings.Cut(c.flake, "#"); ok {
		name := strings.TrimPrefix(attr, "landscaperDeployments.")
		if name != "" && name == filepath.Base(name) && name != ".." {
			return filepath.Join(dir, ".landscaper", "deployments", name, "state.json")
		}
	}
	return filepath.Join(dir, ".landscaper", "state.json")
}

// openBackend opens a state by its place: a postgres:// or postgresql://
// URL keeps the state in PostgreSQL (connecting on first use), anything
// else is a state file.
func openBackend(place string) state.Backend {
	if pgstate.IsURL(place) {
		return pgstate.Open(place)
	}
	return state.NewFile(place)
}

// schemaCache keeps providers' schemas in the user's cache directory
// (LANDSCAPER_SCHEMA_CACHE=off disables it).
func schemaCache(env Env) *providerset.SchemaCache {
	if env.Getenv("LANDSCAPER_SCHEMA_CACHE") == "off" {
		return nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil
	}
	return providerset.NewSchemaCache(filepath.Join(dir, "landscaper", "provider-schemas.json"))
}

func lockInfo() state.LockInfo {
	host, _ := os.Hostname()
	return state.LockInfo{PID: os.Getpid(), Host: host, Command: strings.Join(os.Args, " "), Since: time.Now().UTC()}
}

func pluginLogger(env Env) hclog.Logger {
	level := env.Getenv("LANDSCAPER_LOG")
	if level == "" {
		return nil
	}
	return hclog.New(&hclog.LoggerOptions{Name: "landscaper", Level: hclog.LevelFromString(level), Output: env.Stderr})
}

func style(env Env) ui.Style {
	return ui.Style{Color: env.IsTerminal && !env.NoColor && env.Getenv("NO_COLOR") == "", Details: env.Details}
}

// display picks how progress is shown.
type display struct {
	observer engine.Observer
	json     *ui.JSON
	close    func()
}

func newDisplay(env Env, asJSON bool) display {
	switch {
	case asJSON:
		j := ui.NewJSON(env.Stdout)
		return display{observer: j, json: j, close: func() {}}
	case env.IsTerminal:
		t := ui.NewTerminal(env.Stdout, style(env))
		return display{observer: t, close: t.Close}
	default:
		return display{observer: ui.NewPlain(env.Stdout), close: func() {}}
	}
}

func openEngine(ctx context.Context, c *common, env Env, obs engine.Observer, needDeployment bool) (*engine.Engine, error) {
	src, dir, err := c.source()
	if err != nil && (needDeployment || !errors.Is(err, eval.ErrNoDeployment)) {
		return nil, err
	}
	if err != nil {
		dir = "."
	}
	backend := c.backend(env, dir)
	if needDeployment {
		if err := checkFlakeCopy(c.flake, src, backend); err != nil {
			return nil, err
		}
	}
	deploymentDir, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	opts := engine.Options{
		Source: src, Backend: backend, LockInfo: lockInfo(), LockTimeout: c.lockTimeout, Dir: deploymentDir,
		Parallelism: c.parallelism, Targets: c.targets, Replace: c.replace, NoRefresh: c.noRefresh, Build: c.build, Describe: c.describe,
		Observer: obs, Builtins: providerset.Discover(), Logger: pluginLogger(env),
		SchemaCache:      schemaCache(env),
		OperationTimeout: c.operationTimeout, CallTimeout: c.callTimeout,
		// Plan and apply plan the deployment next.
		StartEarly: needDeployment,
	}
	if env.Getenv("LANDSCAPER_TIMELINE") != "" {
		opts.Timeline = env.Stderr
	}
	return engine.Open(ctx, opts)
}

var (
	planSpec = spec{name: "plan", max: 0, about: `Show what apply would change: evaluate the deployment, ask the providers what
exists (unless -refresh=false) and what they would do. Changes nothing but
settled interrupted operations, which only an apply records.`}
	applySpec = spec{name: "apply", args: "[FILE]", max: 1, about: `Make the world match the deployment: plan, ask for "yes" (unless
--auto-approve), then create, update, replace and delete in dependency order,
recording the state after every result. With FILE, a plan saved by "plan
--out FILE": apply exactly that plan without asking, or refuse, changing
nothing, when the state, the deployment or what the providers plan changed
since.`}
	destroySpec = spec{name: "destroy", max: 0, about: `Delete everything the state records (or the --target members and what
depends on them), in reverse dependency order, from the state alone: the
deployment is not evaluated.`}
)

func runPlan(ctx context.Context, args []string, env Env) error {
	fs := planSpec.flags()
	c := newCommon()
	c.deploymentFlags(fs, "plan")
	var mode planMode
	mode.register(fs, "plan")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 for no changes, 1 for an error, 2 for changes")
	out := fs.String("out", "", "also write the plan to this `file` (mode 0600; no sensitive value in it), for landscaper apply FILE")
	noColorFlag(fs, &env)
	detailsFlag(fs, &env)
	if _, err := planSpec.parse(fs, args, env); err != nil {
		return err
	}
	if *out != "" && mode.refreshOnly {
		return &exitError{code: 2, err: errors.New("--out saves a plan to apply; a --refresh-only plan cannot be saved")}
	}
	if err := c.check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := mode.check(&c); err != nil {
		return err
	}
	disp := newDisplay(env, c.json)
	defer disp.close()
	c.describe = true
	e, err := openEngine(ctx, &c, env, disp.observer, mode.needsDeployment())
	if err != nil {
		return err
	}
	defer e.Close()
	plan, err := mode.plan(ctx, e)
	if err != nil {
		return err
	}
	mode.render(env, disp, c.json, e, plan)
	if *out != "" {
		saved, err := e.Save(plan, mode.destroy)
		if err != nil {
			return err
		}
		if err := writeSavedPlan(*out, saved); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintf(env.Stdout, "\nSaved the plan to %s. To do exactly this: landscaper apply %s\n", *out, *out)
		}
	}
	if *detailed && mode.hasChanges(e, plan) {
		return &exitError{code: 2}
	}
	return nil
}

func runApply(ctx context.Context, args []string, env Env, destroy bool) error {
	name, sp := "apply", applySpec
	if destroy {
		name, sp = "destroy", destroySpec
		if replaceGiven(args) {
			return &exitError{code: 2, err: errors.New("--replace is for plan and apply; destroy removes every member anyway")}
		}
	}
	fs := sp.flags()
	c := newCommon()
	c.deploymentFlags(fs, name)
	mode := planMode{destroy: destroy}
	if !destroy {
		mode.register(fs, name)
	}
	autoApprove := fs.Bool("auto-approve", false, name+" without asking")
	noColorFlag(fs, &env)
	detailsFlag(fs, &env)
	positional, err := sp.parse(fs, args, env)
	if err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	var saved *engine.SavedPlan
	if len(positional) == 1 {
		// A saved plan was approved when it was made: it is applied as
		// it is, or not at all.
		if saved, err = readSavedPlan(positional[0]); err != nil {
			return err
		}
		if err := savedOptions(&c, &mode, saved); err != nil {
			return err
		}
		*autoApprove = true
	}
	if err := mode.check(&c); err != nil {
		return err
	}
	if !*autoApprove && !env.IsTerminal {
		return &exitError{code: 1, err: fmt.Errorf("%s needs confirmation, but there is no terminal to ask on; run with --auto-approve", name)}
	}
	disp := newDisplay(env, c.json)
	defer disp.close()
	// What each change does is worth reading a host for when someone
	// approves the plan, or asked for it; a saved plan carries its own.
	c.describe = saved == nil && !destroy && (!*autoApprove || env.Details)
	e, err := openEngine(ctx, &c, env, disp.observer, mode.needsDeployment())
	if err != nil {
		return err
	}
	defer e.Close()
	plan, err := mode.plan(ctx, e)
	if err != nil {
		return err
	}
	if saved != nil {
		if err := e.CheckSaved(saved, plan, mode.destroy); err != nil {
			return err
		}
	}
	mode.render(env, disp, c.json, e, plan)
	if mode.refreshOnly {
		return applyRefreshOnly(ctx, e, plan, env, disp, c.json, *autoApprove)
	}
	if !plan.HasChanges() {
		if e.HasUnsaved() {
			// Nothing to do in the world; record what planning settled.
			_, err := e.Apply(ctx, plan)
			return err
		}
		return nil
	}
	if !*autoApprove {
		fmt.Fprintf(env.Stdout, "\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: ")
		answer, _ := readLine(env.Stdin)
		if strings.TrimSpace(answer) != "yes" {
			return &exitError{code: 1, err: fmt.Errorf("%s cancelled", name)}
		}
	}
	if !c.json {
		fmt.Fprintln(env.Stdout)
	}
	start := time.Now()
	summary, err := e.Apply(ctx, plan)
	disp.close()
	stats := e.Stats()
	if c.json {
		disp.json.Write(map[string]any{
			"kind": "summary", "created": len(summary.Created), "updated": len(summary.Updated),
			"replaced": len(summary.Replaced), "deleted": len(summary.Deleted), "failed": summary.Failed,
			"skipped": summary.Skipped, "rollouts": summary.Rollouts, "elapsed_ms": time.Since(start).Milliseconds(),
			"nix_invocations": stats.NixInvocations, "plugin_processes": stats.PluginProcesses,
		})
	} else {
		printSummary(env.Stdout, name, summary, style(env), time.Since(start))
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 130, err: errors.New("interrupted; state saved; run again to continue")}
		}
		return err
	}
	if !summary.OK() {
		return &exitError{code: 1, err: summary.Err()}
	}
	return nil
}

// replaceGiven reports whether args hold --replace before any "--".
func replaceGiven(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "replace" {
			return true
		}
	}
	return false
}

func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if buf[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

func printSummary(w io.Writer, command string, s *engine.Summary, st ui.Style, elapsed time.Duration) {
	title := strings.ToUpper(command[:1]) + command[1:]
	msg := fmt.Sprintf(title+" complete! Resources: %d added, %d changed, %d replaced, %d destroyed (%s).",
		len(s.Created), len(s.Updated), len(s.Replaced), len(s.Deleted), elapsed.Round(10*time.Millisecond))
	for _, o := range s.Rollouts {
		fmt.Fprintln(w, o.String())
	}
	if !s.OK() {
		msg = fmt.Sprintf(title+" failed. Resources: %d added, %d changed, %d replaced, %d destroyed; %d failed, %d skipped (%s).",
			len(s.Created), len(s.Updated), len(s.Replaced), len(s.Deleted), len(s.Failed), len(s.Skipped), elapsed.Round(10*time.Millisecond))
		fmt.Fprintln(w, "\n"+st.Red(msg))
		return
	}
	fmt.Fprintln(w, "\n"+st.Green(msg))
}
