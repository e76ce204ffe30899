package activation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/activation"
)

// TestLocal: the agent's runner passes arguments and stdin, returns
// standard output, and says how a script failed.
func TestLocal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, script, stdin string
		args                []string
		timeout             time.Duration
		out                 string
		err                 []string
	}{
		{name: "arguments", script: `printf '%s|' "$@"`, args: []string{"a b", "", "c'd"}, out: "a b||c'd|"},
		{name: "stdin", script: `tr a-z A-Z`, stdin: "hello\n", out: "HELLO\n"},
		{name: "exit status and stderr", script: "echo partial; echo first >&2; echo last >&2; exit 3", out: "partial\n",
			err: []string{"the step exited with status 3: first\nlast"}},
		{name: "stdout when stderr is empty", script: "echo only-out; exit 1", out: "only-out\n", err: []string{"exited with status 1: only-out"}},
		{name: "timeout", script: "sleep 30", timeout: 200 * time.Millisecond, err: []string{"the step: context deadline exceeded"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			var stdin *strings.Reader
			if c.stdin != "" {
				stdin = strings.NewReader(c.stdin)
			}
			var out string
			var err error
			if stdin != nil {
				out, err = activation.Local{}.Run(ctx, "the step", c.script, stdin, c.args...)
			} else {
				out, err = activation.Local{}.Run(ctx, "the step", c.script, nil, c.args...)
			}
			if out != c.out {
				t.Errorf("output %q, want %q", out, c.out)
			}
			if (err != nil) != (len(c.err) > 0) {
				t.Fatalf("error %v, want one saying %q", err, c.err)
			}
			for _, want := range c.err {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
