package pgstate

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// The landscaper command with its state in PostgreSQL: the checks
// through the real binary.

const cliDeployment = `{ members, providers, ... }: {
  members.slow = { type = providers.local.exec; inputs = { executable = "sleep"; args = [ "2" ]; }; };
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "after ${members.a.outputs.sha256} ${members.slow.outputs.stdout}"; }; };
}
`

func landscaperCmd(t *testing.T, dir, stateURL string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(testbin.Dir(t), "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LANDSCAPER_STATE="+stateURL, "NO_COLOR=1")
	return cmd
}

func runLandscaper(t *testing.T, dir, stateURL string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := landscaperCmd(t, dir, stateURL, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func TestCLIWithStateInPostgreSQL(t *testing.T) {
	u := newDatabase(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(cliDeployment), 0o644); err != nil {
		t.Fatal(err)
	}

	// Two applies at once: one holds the lock, the other is refused
	// naming the holder, and nothing interleaves.
	first := landscaperCmd(t, dir, u, "apply", "--auto-approve")
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // the first has the lock while `slow` runs
	out, code := runLandscaper(t, dir, u, "apply", "--auto-approve")
	if code == 0 || !strings.Contains(out, "locked by pid") {
		t.Errorf("a second apply while the first runs: exit %d, want a refusal naming the holder:\n%s", code, out)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first apply: %v\n%s", err, firstOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, ".landscaper")); err == nil {
		t.Error("a local state directory was written")
	}
	if out, code := runLandscaper(t, dir, u, "plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}

	// SIGKILL in the middle of an apply, then apply again: converges,
	// nothing twice.
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(strings.ReplaceAll(cliDeployment, `"2"`, `"3"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	killed := landscaperCmd(t, dir, u, "apply", "--auto-approve")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	_ = killed.Process.Signal(syscall.SIGKILL)
	_ = killed.Wait()
	if out, code := runLandscaper(t, dir, u, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after SIGKILL: exit %d\n%s", code, out)
	}
	out, _ = runLandscaper(t, dir, u, "state", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || strings.Contains(out, "interrupted") {
		t.Errorf("state after the SIGKILL and a new apply: %q, want 3 members and nothing pending", out)
	}
	if out, code := runLandscaper(t, dir, u, "plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan at the end: exit %d\n%s", code, out)
	}
}
