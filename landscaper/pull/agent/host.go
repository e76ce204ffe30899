package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/internal/activation"
)

// probe is what activation.Inspect found on this host.
type probe struct {
	current, profile, booted string
	present                  bool
}

// probeHost inspects this host for toplevel (may be "").
func probeHost(ctx context.Context, toplevel string) (probe, error) {
	p, err := activation.Inspect(ctx, activation.Local{}, toplevel, false)
	if err != nil {
		return probe{}, fmt.Errorf("inspect the host: %w", err)
	}
	return probe{current: p.Current, profile: p.Profile, booted: p.Booted, present: p.Present}, nil
}

// tail is the last 20 lines of s.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func dirOf(p string) string { return filepath.Dir(p) }

// parseMode reads an octal mode of three or four digits.
func parseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || len(s) < 3 || len(s) > 4 || n > 0o777 {
		return 0, fmt.Errorf("mode %q: want octal permission bits such as 0400", s)
	}
	return os.FileMode(n), nil
}
