package systemdtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/systemdhost"
)

// landscaperCLI builds landscaper and the nixos provider into one
// directory (landscaper finds its providers next to itself) and returns
// landscaper's path.
func landscaperCLI(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./landscaper/cmd/landscaper", "./providers/nixos/cmd/landscaper-provider-nixos")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build landscaper: %v\n%s", err, out)
	}
	return filepath.Join(dir, "landscaper")
}

// deployment is a landscaper deployment of one nixos.system member, web,
// on the container, logging in with the key in ./login-key.
func (tg *target) deployment(t *testing.T, toplevel string) string {
	t.Helper()
	return fmt.Sprintf(`{ members, providers, ... }:
{
  members.web = {
    type = providers.nixos.system;
    inputs = {
      address = %q;
      privateKey = builtins.readFile ./login-key;
      hostPublicKey = %q;
      toplevel = %q;
      confirmTimeout = %d;
    };
  };
}
`, tg.c.Address, tg.c.HostPublicKey(t), toplevel, confirmTimeout)
}

// landscaper runs the CLI in dir and returns its combined output and exit
// code.
func landscaper(t *testing.T, bin, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = cliEnv()
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

// cliEnv is the environment of landscaper: no colours, no substituters
// (the machine is offline).
func cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LANDSCAPER_") || strings.HasPrefix(kv, "NIX_CONFIG=") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_COLOR=1", "NIX_CONFIG=substituters =")
}

// TestApplyKilledMidActivation: `landscaper apply` is killed with SIGKILL
// while the new system activates on the target. Its provider goes with
// it; the target finishes the activation, waits in vain for the deployer
// and re-activates the previous system on its own. The next apply finds a
// free, healthy host and deploys the system.
func TestApplyKilledMidActivation(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	bin := landscaperCLI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login-key"), []byte(tg.login.Private), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(toplevel string) {
		if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(tg.deployment(t, toplevel)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v1 := systemdhost.BuildSystem(t, systemdhost.System{Name: "apply-v1", Units: []string{"standin-web.service"}})
	v2 := systemdhost.BuildSystem(t, systemdhost.System{Name: "apply-v2", Units: []string{"standin-web.service", "standin-new.service"}, Held: true})

	write(v1)
	if out, code := landscaper(t, bin, dir, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply of v1 exited %d:\n%s", code, out)
	}
	if got := tg.c.CurrentSystem(t); got != v1 {
		t.Fatalf("after the apply of v1 the container runs %q", got)
	}

	write(v2)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	apply := exec.CommandContext(ctx, bin, "apply", "--auto-approve")
	apply.Dir = dir
	apply.Env = cliEnv()
	var out bytes.Buffer
	apply.Stdout, apply.Stderr = &out, &out
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the activation of v2 to start", func() bool { return tg.c.ActivationStarted("apply-v2") })
	if err := apply.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = apply.Wait()
	t.Logf("the killed apply printed:\n%s", out.String())
	provider := filepath.Join(filepath.Dir(bin), "landscaper-provider-nixos")
	waitFor(t, "the provider to end with the apply", func() bool { return len(processesOf(provider)) == 0 })
	tg.c.Release(t, "apply-v2")

	waitFor(t, "the target to roll back on its own", func() bool {
		return strings.HasPrefix(tg.supervisorStatus(t), "rolled-back")
	})
	if s := tg.supervisorStatus(t); s != "rolled-back no-new-connection 0" {
		t.Errorf("supervisor status %q, want a rollback for want of a new connection", s)
	}
	acts := tg.c.Activations()
	if n := len(acts); n < 2 || acts[n-2] != v2+" test" || acts[n-1] != v1+" test" {
		t.Errorf("activations %q: want %s test (finished), then %s test", acts, v2, v1)
	}
	if got := tg.c.CurrentSystem(t); got != v1 {
		t.Errorf("the target runs %q, want %s", got, v1)
	}
	if s := tg.exec(t, "systemctl is-active standin-new.service || true"); s == "active" {
		t.Error("v2's standin-new.service still runs after the rollback")
	}
	if f := tg.failedUnits(t); f != "" {
		t.Errorf("failed units after the rollback:\n%s", f)
	}

	// The next apply deploys v2, and then there is nothing left to do.
	if out, code := landscaper(t, bin, dir, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("the apply after the killed one exited %d:\n%s", code, out)
	}
	if got := tg.c.CurrentSystem(t); got != v2 {
		t.Errorf("after the next apply the container runs %q, want %s", got, v2)
	}
	if out, code := landscaper(t, bin, dir, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the apply exited %d, want 0 (no changes):\n%s", code, out)
	}
}

// processesOf lists the pids of processes running the executable path.
func processesOf(path string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == path {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}
