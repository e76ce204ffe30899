package activation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Runner runs scripts on the host being activated: over SSH for
// nixos.system, with a shell of its own for the pull agent.
type Runner interface {
	// Run runs script with sh, as root, with args as $1, $2, ... and
	// stdin (nil: none), and returns what it printed on standard output,
	// also when it failed. name says what the script does, in errors; a
	// script that exits non-zero is an error quoting the end of its
	// standard error.
	Run(ctx context.Context, name, script string, stdin io.Reader, args ...string) (string, error)
}

// Conn is a Runner over a connection of its own, closed once done with.
type Conn interface {
	Runner
	Close() error
}

// Reporter takes an activation's progress: the step it begins, and log
// lines (the provider SDK's operation, or the agent's log).
type Reporter interface {
	Progress(step string)
	Logf(format string, args ...any)
}

// Local runs scripts on this machine with /bin/sh: the pull agent's
// Runner for the host it runs on. Closing it does nothing.
type Local struct {
	// Command makes the command that runs the shell, as
	// exec.CommandContext does (nil: that). Tests run the shell inside a
	// stand-in host's namespace with it.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
}

// outputCap bounds what Local keeps of a script's standard output and of
// its standard error: the tail of a chatty health check is what counts.
const outputCap = 1 << 20

func (l Local) Run(ctx context.Context, name, script string, stdin io.Reader, args ...string) (string, error) {
	command := l.Command
	if command == nil {
		command = exec.CommandContext
	}
	cmd := command(ctx, "/bin/sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.Stdin = stdin
	stdout, stderr := &capped{max: outputCap}, &capped{max: outputCap}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A program the script left running in the background (the
	// supervisor is started detached, so not that one) must not hold the
	// output open for long after the script ended.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out := stdout.String()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out, nil
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s: %w", name, ctx.Err())
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		msg := lastLines(stderr.String(), 10)
		if msg == "" {
			msg = lastLines(out, 10)
		}
		if msg == "" {
			return out, fmt.Errorf("%s exited with status %d", name, exit.ExitCode())
		}
		return out, fmt.Errorf("%s exited with status %d: %s", name, exit.ExitCode(), msg)
	}
	return out, fmt.Errorf("%s: %w", name, err)
}

// Close does nothing: Local holds no connection.
func (Local) Close() error { return nil }

// capped keeps the last max bytes written to it.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > c.max {
		p = p[len(p)-c.max:]
	}
	if over := c.buf.Len() + len(p) - c.max; over > 0 {
		c.buf.Next(over)
	}
	c.buf.Write(p)
	return n, nil
}

func (c *capped) String() string { return c.buf.String() }

// lastLines is the last n lines of s, without surrounding space.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
