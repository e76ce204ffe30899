// Package providertest runs the example providers of examples/, written
// outside Landscaper (one in Go with the SDK in a module of its own, one in
// Python with grpcio), through the real landscaper command: plan, apply,
// drift, destroy. A change to the SDK or the protocol that breaks providers
// written outside this repository fails here.
package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// commandTimeout bounds one command; a hang fails the test instead of the
// whole package timing out.
const commandTimeout = 5 * time.Minute

// runIn runs a command in dir with env and returns its stdout, stderr and
// exit code; a command that cannot start or times out fails the test.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, nil
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s timed out after %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), commandTimeout, out.String(), errb.String())
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %s %s: %v", name, strings.Join(args, " "), err)
		}
		return out.String(), errb.String(), ee.ExitCode()
	}
	return out.String(), errb.String(), 0
}

// deployment is a deployment directory and what landscaper printed there.
type deployment struct {
	t   *testing.T
	dir string
	// printed collects the stdout and stderr of every run, for the check
	// that no secret was ever shown.
	printed strings.Builder
}

// landscaper runs the landscaper command in the deployment and fails the
// test unless it exits with want.
func (d *deployment) landscaper(want int, args ...string) (stdout, stderr string) {
	d.t.Helper()
	bin := filepath.Join(testbin.Dir(d.t), "landscaper")
	stdout, stderr, code := runIn(d.t, d.dir, testbin.Env(), bin, args...)
	d.printed.WriteString(stdout + stderr)
	if code != want {
		d.t.Fatalf("landscaper %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// edit replaces old by new in the deployment's landscaper.nix.
func (d *deployment) edit(old, new string) {
	d.t.Helper()
	path := filepath.Join(d.dir, "landscaper.nix")
	b, err := os.ReadFile(path)
	if err != nil {
		d.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		d.t.Fatalf("landscaper.nix has no %q", old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// planJSON is the plan line of `landscaper plan --json`.
type planJSON struct {
	Kind    string `json:"kind"`
	Changes []struct {
		Member  string   `json:"member"`
		Action  string   `json:"action"`
		Changed []string `json:"changed"`
	} `json:"changes"`
	Drift []string `json:"drift"`
}

// plan runs `landscaper plan --json` and returns the plan's actions by
// member and its drift lines.
func (d *deployment) plan() (actions map[string]string, drift []string) {
	d.t.Helper()
	stdout, _ := d.landscaper(0, "plan", "--json")
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var p planJSON
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			d.t.Fatalf("plan --json: a line is not JSON: %v\n%s", err, l)
		}
		if p.Kind != "plan" {
			continue
		}
		actions = map[string]string{}
		for _, c := range p.Changes {
			actions[c.Member] = c.Action
		}
		return actions, p.Drift
	}
	d.t.Fatalf("plan --json printed no plan:\n%s", stdout)
	return nil, nil
}

// wantActions fails the test unless the plan's actions are want.
func (d *deployment) wantActions(got, want map[string]string) {
	d.t.Helper()
	for m, a := range want {
		if got[m] != a {
			d.t.Errorf("plan: %s %q, want %q (whole plan: %v)", m, got[m], a, got)
		}
	}
	for m, a := range got {
		if _, ok := want[m]; !ok && a != "no-op" {
			d.t.Errorf("plan: %s %q, want no change (whole plan: %v)", m, a, got)
		}
	}
}

// stateText is the state file as it is on disk.
func (d *deployment) stateText() string {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, ".landscaper", "state.json"))
	if err != nil {
		d.t.Fatalf("read the state: %v", err)
	}
	return string(b)
}

// neverShown fails the test if any of secrets appears in what landscaper
// printed.
func (d *deployment) neverShown(secrets ...string) {
	d.t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(d.printed.String(), s) {
			d.t.Errorf("landscaper printed the secret %q", s)
		}
	}
}

// goEnv is the environment of go commands that build the examples: the
// test's own, without a workspace that could pull the example into
// Landscaper's module.
func goEnv() []string {
	return append(os.Environ(), "GOWORK=off")
}
