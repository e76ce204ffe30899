package activation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/activation"
)

// TestExitMeaning: each exit status of switch-to-configuration reads as
// what it means.
func TestExitMeaning(t *testing.T) {
	for code, want := range map[int]string{
		1:   "pre-switch checks",
		2:   "activation script failed",
		4:   "units failed",
		100: "reboot is needed",
		124: "did not finish within activationTimeout",
		137: "did not finish within activationTimeout",
		3:   "unexpected exit status",
	} {
		if got := activation.ExitMeaning(code); !strings.Contains(got, want) {
			t.Errorf("ExitMeaning(%d) = %q, want it to say %q", code, got, want)
		}
	}
}

// TestStepErrorText: the log goes into the message only when
// switch-to-configuration failed; Reason never carries it nor the host.
func TestStepErrorText(t *testing.T) {
	exit := &activation.StepError{Host: "h:22", Step: "activate", Err: &activation.ExitError{Code: 4, FailedUnits: "a.service"}, Outcome: "rolled back: x", Log: "LOG LINE"}
	if got, want := exit.Error(), "h:22: activate failed: switch-to-configuration test exited with status 4: units failed (a.service)\nLOG LINE; rolled back: x"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := exit.Reason(), "activate failed: switch-to-configuration test exited with status 4: units failed (a.service); rolled back: x"; got != want {
		t.Errorf("Reason() = %q, want %q", got, want)
	}
	check := &activation.StepError{Host: "h:22", Step: "health checks", Err: errors.New("bad"), Outcome: "rolled back: x", Log: "LOG LINE"}
	if got, want := check.Error(), "h:22: health checks failed: bad; rolled back: x"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	for _, c := range []struct {
		outcome                     string
		rolledBack, unchanged, kept bool
	}{
		{"rolled back: re-activated the previous system /nix/store/x", true, false, false},
		{"nothing was changed; the host runs nothing", false, true, false},
		{"the host kept the new system /nix/store/y (it was confirmed)", false, false, true},
		{"the host's state is unknown (no status)", false, false, false},
	} {
		e := &activation.StepError{Outcome: c.outcome}
		if e.RolledBack() != c.rolledBack || e.Unchanged() != c.unchanged || e.Kept() != c.kept {
			t.Errorf("%q: rolled back %v, unchanged %v, kept %v", c.outcome, e.RolledBack(), e.Unchanged(), e.Kept())
		}
	}
}

func TestBudget(t *testing.T) {
	checks := []activation.HealthCheck{
		{Command: "true", Timeout: 10 * time.Second, Retries: 3, Interval: 2 * time.Second},
		{URL: "http://x/", Timeout: time.Second, Retries: 0, Interval: 0},
	}
	if got, want := activation.Budget(checks), 4*12*time.Second+time.Second; got != want {
		t.Errorf("Budget = %s, want %s", got, want)
	}
	if got := activation.Budget(nil); got != 0 {
		t.Errorf("Budget(nil) = %s", got)
	}
}
