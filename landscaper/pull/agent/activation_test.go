package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/activation"
)

// TestOutcomeOf: what the agent reports for each way an activation ends.
func TestOutcomeOf(t *testing.T) {
	const prev = "/nix/store/00000000000000000000000000000000-prev"
	step := func(step string, err error, outcome, log string) error {
		return fmt.Errorf("wrapped: %w", &activation.StepError{Host: "h1", Step: step, Err: err, Outcome: outcome, Log: log})
	}
	for _, c := range []struct {
		name   string
		err    error
		result string
		retry  bool
		reason []string
		log    string
	}{
		{"activated", nil, pulldir.ResultActivated, false, nil, ""},
		{"exit 4 rolled back", step("activate", &activation.ExitError{Code: 4, FailedUnits: "nginx.service"}, "rolled back: re-activated the previous system "+prev, "the following units failed: nginx.service"),
			pulldir.ResultRolledBack, false, []string{"activate failed", "status 4", "units failed (nginx.service)", "re-activated the previous system " + prev}, "the following units failed: nginx.service"},
		{"no new connection", step("new connection to the server after activation", errors.New("connection refused"), "rolled back: re-activated the previous system "+prev, ""),
			pulldir.ResultRolledBack, false, []string{"new connection", "connection refused", prev}, ""},
		{"rollback failed", step("health checks", errors.New("health check failed"), "re-activating the previous system "+prev+" failed too (switch-to-configuration exit 1); the host needs attention", ""),
			pulldir.ResultFailed, false, []string{"health check failed", "failed too"}, ""},
		{"busy", step("activate", errors.New("another activation is in progress"), "nothing was changed", ""), pulldir.ResultFailed, true, []string{"another activation"}, ""},
		{"kept", step("confirm", errors.New("late"), "the host kept the new system /nix/store/x (it was confirmed); its boot default is unchanged", ""), pulldir.ResultActivated, false, nil, ""},
		{"boot entry", step("boot entry", errors.New("Failed to install bootloader"), "rolled back: re-activated "+prev+", boot default "+prev, ""),
			pulldir.ResultRolledBack, false, []string{"boot entry failed", "Failed to install bootloader"}, ""},
		{"not a step", errors.New("something else"), pulldir.ResultFailed, false, []string{"something else"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := outcomeOf(c.err)
			if o.result != c.result || o.retry != c.retry || o.log != c.log {
				t.Fatalf("result %q retry %v log %q, want %q %v %q (%s)", o.result, o.retry, o.log, c.result, c.retry, c.log, o.reason)
			}
			for _, want := range c.reason {
				if !strings.Contains(o.reason, want) {
					t.Errorf("reason %q lacks %q", o.reason, want)
				}
			}
			if strings.Contains(o.reason, "h1:") || (c.log != "" && strings.Contains(o.reason, c.log)) {
				t.Errorf("reason %q carries the host's name or the log", o.reason)
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
