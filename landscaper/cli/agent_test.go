package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPullFlagsRefused: bad pull mode flags are usage errors (exit 2)
// naming the flag, and nothing starts.
func TestPullFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"serve pull dir without HTTP", []string{"serve", "--pull-dir", t.TempDir(), "--http-listen", "", "--tftp-listen", "127.0.0.1:0"}, "--pull-dir needs the HTTP listener"},
		{"agent without server", []string{"agent", "--once", "--server-key", "ssh-ed25519 AAAA"}, "needs --server and --server-key"},
		{"agent with a bad server key", []string{"agent", "--once", "--server", "http://127.0.0.1:1", "--server-key", "/nonexistent/server.pub"}, "--server-key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr syncBuffer
			err := run(context.Background(), c.args, testEnv(&stderr))
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want exit 2 saying %q", err, c.want)
			}
		})
	}
}
