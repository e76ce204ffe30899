package local

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// stderrTailLines is how many of a failed command's last stderr lines its
// error shows.
const stderrTailLines = 20

// maxLogLine bounds one log line; longer stderr lines are split (after
// their secrets are redacted).
const maxLogLine = 64 << 10

// waitDelay is how long a command's output is still read after it exited
// (a background child may hold it open) or after it was killed.
const waitDelay = 5 * time.Second

// maxTimeout is the largest timeout a time.Duration holds, in seconds.
const maxTimeout = float64(math.MaxInt64 / int64(time.Second))

// execInputs are the inputs of local.exec.
type execInputs struct {
	Executable string            `json:"executable"`
	Args       []string          `json:"args"`
	Stdin      string            `json:"stdin"`
	Env        map[string]string `json:"env"`
	Timeout    float64           `json:"timeout"`
	Destroy    *destroyCommand   `json:"destroy"`
}

// destroyCommand is the command local.exec runs on delete.
type destroyCommand struct {
	Executable string   `json:"executable"`
	Args       []string `json:"args"`
}

// execOutputs are the outputs of local.exec.
type execOutputs struct {
	Stdout string `json:"stdout"`
	// Dir is the directory the command ran in (the provider's, which the
	// engine sets to the deployment's), recorded so that the destroy
	// command runs there too, whatever directory a later run starts in.
	// Records made before it existed have none.
	Dir string `json:"dir,omitempty"`
}

func execType() *sdk.Type[execInputs, execOutputs] {
	return &sdk.Type[execInputs, execOutputs]{
		Description: "A command run on the machine running the engine when the resource is created and whenever its inputs change.",
		Inputs: []sdk.Attr{
			sdk.String("executable", "Program to run: a path, or a name looked up in PATH.").Required(),
			sdk.List("args", "string", "Arguments passed to the program.").Default([]string{}),
			sdk.String("stdin", "Text fed to the program's standard input."),
			sdk.Map("env", "string", "Variables added to the provider's environment for the program.").Default(map[string]string{}),
			sdk.Number("timeout", "Seconds after which the program is killed; 0 means no limit.").Default(0),
			sdk.Object("destroy", "Command run when the resource is deleted.",
				sdk.String("executable", "Program to run on delete.").Required(),
				sdk.List("args", "string", "Arguments passed to it.").Default([]string{}),
			),
		},
		Outputs: []sdk.Attr{
			sdk.String("stdout", "Standard output of the last run."),
			sdk.String("dir", "The directory the command ran in, the deployment's; the destroy command runs there too."),
		},
		Validate: validateExec,
		Plan:     planExec,
		Create: func(ctx context.Context, op *sdk.Op, in execInputs) (execOutputs, error) {
			return runExec(ctx, op, in)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[execInputs, execOutputs], in execInputs) (execOutputs, error) {
			return runExec(ctx, op, in)
		},
		Delete: func(ctx context.Context, op *sdk.Op, prior sdk.State[execInputs, execOutputs]) error {
			d := prior.Inputs.Destroy
			if d == nil {
				return nil
			}
			if dir := prior.Outputs.Dir; dir != "" {
				if _, err := os.Stat(dir); err != nil {
					return fmt.Errorf("run %s: it runs where the command ran, in %s, which is gone (%w); if what the command made is gone too, forget the member with landscaper state rm", d.Executable, dir, err)
				}
			}
			_, err := runCommand(ctx, op, command{
				executable: d.Executable, args: d.Args, env: prior.Inputs.Env, timeout: prior.Inputs.Timeout,
				dir: prior.Outputs.Dir,
			})
			return err
		},
		// Read is left out: the recorded outputs are the truth, and a
		// resource whose create was interrupted counts as absent.
	}
}

func validateExec(in execInputs, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	known := func(p resource.Path) bool { return !resource.Covered(p, unknown) }
	if p := resource.AttrPath("executable"); known(p) && in.Executable == "" {
		diags = append(diags, resource.Error(p, "empty executable", "executable must name a program"))
	}
	if p := resource.AttrPath("timeout"); known(p) && (in.Timeout < 0 || in.Timeout > maxTimeout) {
		diags = append(diags, resource.Error(p, "invalid timeout", "want a number of seconds from 0 (no limit) to %.0f", maxTimeout))
	}
	keys := make([]string, 0, len(in.Env))
	for k := range in.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := resource.AttrPath("env").Key(k)
		if known(p) && (k == "" || strings.ContainsAny(k, "=\x00")) {
			diags = append(diags, resource.Error(p, "invalid environment variable name", "a name must be non-empty and contain neither '=' nor NUL"))
		}
	}
	if p := resource.AttrPath("destroy", "executable"); known(p) && in.Destroy != nil && in.Destroy.Executable == "" {
		diags = append(diags, resource.Error(p, "empty executable", "executable must name a program"))
	}
	return diags
}

// planExec makes the planned directory known, and runs the command again
// when it last ran in another directory than the deployment's (the
// deployment moved): what it did there, relative paths and all, is done
// here, and the destroy command will run here.
func planExec(_ context.Context, p *sdk.Plan[execInputs, execOutputs]) {
	dir, err := os.Getwd()
	if err != nil {
		p.Diagnostics = append(p.Diagnostics, resource.Error(nil, "cannot tell the deployment's directory", "%v", err))
		return
	}
	if p.Action == resource.ActionNoop && p.Prior != nil && p.Prior.Outputs.Dir != "" && p.Prior.Outputs.Dir != dir {
		p.Action = resource.ActionUpdate
		p.SetUnknown("stdout")
		p.Diagnostics = append(p.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning,
			Summary: fmt.Sprintf("the command ran in %s, and the deployment's directory is %s now: it runs again there", p.Prior.Outputs.Dir, dir)})
	}
	p.SetKnown(execOutputs{Dir: dir}, "dir")
}

func runExec(ctx context.Context, op *sdk.Op, in execInputs) (execOutputs, error) {
	dir, err := os.Getwd()
	if err != nil {
		return execOutputs{}, fmt.Errorf("run %s: the deployment's directory: %w", in.Executable, err)
	}
	stdout, err := runCommand(ctx, op, command{
		executable: in.Executable, args: in.Args, stdin: in.Stdin, env: in.Env, timeout: in.Timeout,
	})
	if err != nil {
		return execOutputs{}, err
	}
	if err := checkStdout(in.Executable, stdout); err != nil {
		return execOutputs{}, err
	}
	return execOutputs{Stdout: stdout, Dir: dir}, nil
}

// command is one program to run.
type command struct {
	executable string
	args       []string
	stdin      string
	env        map[string]string
	// timeout in seconds; 0 is none.
	timeout float64
	// dir is where it runs; "" is the provider's working directory.
	dir string
}

// runCommand runs c in its own process group, which is killed as a whole
// when ctx is done or the timeout expires; the kernel also kills the
// program if the provider dies. Stderr lines are sent as log lines while it
// runs; stdout is returned whole.
func runCommand(ctx context.Context, op *sdk.Op, c command) (string, error) {
	runCtx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(c.timeout*float64(time.Second)))
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, c.executable, c.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	cmd.Dir = c.dir
	cmd.Env = commandEnv(c.env)
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	// One byte more than is recorded, so that runExec knows if there was
	// more.
	stdout := &cappedBuffer{max: maxStdout + 1}
	cmd.Stdout = stdout
	stderr := sdk.NewLineLog(op, maxLogLine, stderrTailLines)
	cmd.Stderr = stderr

	err := cmd.Run()
	stderr.Flush()
	switch {
	case err == nil:
		return stdout.String(), nil
	case errors.Is(err, exec.ErrWaitDelay):
		// The program succeeded; something it started still holds its
		// output open. What was read so far is the output.
		op.Logf("%s exited but its output stayed open; stopped reading after %s", c.executable, waitDelay)
		return stdout.String(), nil
	case ctx.Err() != nil:
		return "", fmt.Errorf("run %s: %w%s", c.executable, ctx.Err(), stderr.Tail())
	case runCtx.Err() != nil:
		return "", fmt.Errorf("run %s: timed out after %s s: %w%s", c.executable,
			strconv.FormatFloat(c.timeout, 'f', -1, 64), runCtx.Err(), stderr.Tail())
	}
	return "", fmt.Errorf("run %s: %w%s", c.executable, err, stderr.Tail())
}

// commandEnv is the provider's environment with env added, in a stable
// order.
func commandEnv(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := os.Environ()
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}
