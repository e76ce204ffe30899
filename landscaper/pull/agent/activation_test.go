package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/pull/pulldir"
)

func TestEnded(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "activate.log"), []byte("warning: the following units failed: nginx.service\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const prev = "/nix/store/00000000000000000000000000000000-prev"
	for _, c := range []struct {
		status, cause string
		result        string
		retry         bool
		reason        []string
	}{
		{"rolled-back exit-4 0", "", pulldir.ResultRolledBack, false, []string{"status 4", "units failed", "re-activated the previous system " + prev}},
		{"rolled-back no-new-connection 0", "could not reach the server", pulldir.ResultRolledBack, false, []string{"could not reach the server", prev}},
		{"rolled-back abort 1", "health check failed", pulldir.ResultFailed, false, []string{"health check failed", "failed too (exit 1)"}},
		{"failed exit-2 no-previous", "", pulldir.ResultFailed, false, []string{"status 2", "no previous system"}},
		{"busy", "", pulldir.ResultFailed, true, []string{"another activation"}},
		{"", "", pulldir.ResultFailed, false, []string{"unknown"}},
		{"confirmed", "", pulldir.ResultActivated, false, nil},
	} {
		t.Run(c.status, func(t *testing.T) {
			var cause error
			if c.cause != "" {
				cause = errors.New(c.cause)
			}
			o := ended(dir, c.status, prev, cause)
			if o.result != c.result || o.retry != c.retry {
				t.Fatalf("result %q retry %v, want %q %v (%s)", o.result, o.retry, c.result, c.retry, o.reason)
			}
			for _, want := range c.reason {
				if !strings.Contains(o.reason, want) {
					t.Errorf("reason %q lacks %q", o.reason, want)
				}
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want os.FileMode
		ok   bool
	}{{"0400", 0o400, true}, {"640", 0o640, true}, {"0777", 0o777, true}, {"4755", 0, false}, {"rw", 0, false}, {"08", 0, false}, {"", 0, false}} {
		got, err := parseMode(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseMode(%q) = %v, %v", c.in, got, err)
		}
	}
}
