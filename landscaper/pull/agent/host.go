package agent

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/providers/nixos"
)

// probe is what the nixos provider's probe script found on this host.
type probe struct {
	current, profile, booted string
	present                  bool
}

// probeHost runs the probe script for toplevel (may be "").
func probeHost(ctx context.Context, toplevel string) (probe, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := runScript(ctx, nixos.Scripts().Probe, nil, toplevel)
	if err != nil {
		return probe{}, fmt.Errorf("inspect the host: %w: %s", err, tail(out))
	}
	var p probe
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "current":
			p.current = v
		case "profile":
			p.profile = v
		case "booted":
			p.booted = v
		case "present":
			p.present = v == "1"
		}
	}
	return p, nil
}

// runScript runs a shell script with arguments ($1...) and stdin; it
// returns stdout and stderr together.
func runScript(ctx context.Context, script string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "sh"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
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

// wholeSeconds rounds up to whole seconds, at least 1.
func wholeSeconds(d time.Duration) int { return int(math.Max(1, math.Ceil(d.Seconds()))) }

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func dirOf(p string) string { return filepath.Dir(p) }

// parseMode reads an octal mode of three or four digits.
func parseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || len(s) < 3 || len(s) > 4 || n > 0o777 {
		return 0, fmt.Errorf("mode %q: want octal permission bits such as 0400", s)
	}
	return os.FileMode(n), nil
}
