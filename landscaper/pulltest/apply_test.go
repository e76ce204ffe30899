package pulltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// deployment is a nixos.pull member for the host, with a health check,
// a secret and wait.
const deployment = `{ members, providers, ... }:
let p = import ./params.nix; in
{
  members.web = {
    type = providers.nixos.pull;
    inputs = {
      pullDir = p.pullDir;
      hostPublicKey = p.hostKey;
      toplevel = p.toplevel;
      healthChecks = [ { command = "test -e /run/current-system/healthy && test ! -e /run/fail-checks"; retries = 0; timeout = 5; } ];
      confirmTimeout = 10;
      secrets."/run/keys/token" = { contents = p.secret; mode = "0400"; };
      wait = p.wait;
      waitTimeout = 120;
    };
  };
}
`

func writeDeployment(t *testing.T, dir string, pullDir, hostKey, toplevel, secret string, wait bool) {
	t.Helper()
	params := fmt.Sprintf("{ pullDir = %q; hostKey = %q; toplevel = %q; secret = %q; wait = %v; }\n", pullDir, hostKey, toplevel, secret, wait)
	for name, content := range map[string]string{"landscaper.nix": deployment, "params.nix": params} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func landscaper(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testbin.Dir(t), "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = testbin.Env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("landscaper %v timed out:\n%s", args, out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// TestApplyWaitsForThePulledHost: landscaper apply publishes through
// nixos.pull and waits for the running agent's report; a generation
// whose health check fails is rolled back by the host and the apply
// fails naming the host; a trigger makes the agent repair drift at once.
func TestApplyWaitsForThePulledHost(t *testing.T) {
	pullDir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, pullDir, 0)
	h := startHost(t)
	// An hour between cycles: only long-polls and triggers start them
	// within this test.
	startAgent(t, h, s, "--interval", "1h")
	v1 := testhost.BuildSystem(t, testhost.System{Name: "pull-apply-v1", Healthy: true})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "pull-apply-v2"})
	v3 := testhost.BuildSystem(t, testhost.System{Name: "pull-apply-v3", Healthy: true})
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.key)))
	const secret = "the pulled token 5e1c0d"
	dep := t.TempDir()
	agentLog := func() string { out, _, _ := hostFile(h, "/run/agent.log"); return out }

	writeDeployment(t, dep, pullDir.Path, hostKey, v1, secret, true)
	out, code := landscaper(t, dep, "apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("apply v1: exit %d\n%s\nagent:\n%s\nserver:\n%s", code, out, agentLog(), s.log.String())
	}
	if h.CurrentSystem() != v1 || h.BootDefault() != v1 {
		t.Fatalf("host runs %q, boots %q; want %s", h.CurrentSystem(), h.BootDefault(), v1)
	}
	outputs := testbin.StateOutputs(t, dep)["web"]
	if outputs["status"] != pulldir.ResultActivated || outputs["current"] != v1 || outputs["generation"] != float64(1) {
		t.Fatalf("outputs %v", outputs)
	}
	if got, mode, err := hostFile(h, "/run/keys/token"); err != nil || got != secret || mode != 0o400 {
		t.Fatalf("secret on the host: %q %04o %v", got, mode, err)
	}
	if out, code := landscaper(t, dep, "plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}

	writeDeployment(t, dep, pullDir.Path, hostKey, v2, secret, true)
	out, code = landscaper(t, dep, "apply", "--auto-approve")
	fingerprint := ssh.FingerprintSHA256(h.key)
	if code == 0 || !strings.Contains(out, fingerprint) || !strings.Contains(out, "rolled-back") || !strings.Contains(out, "health check") {
		t.Fatalf("apply v2 (unhealthy): exit %d, want a failure naming host %s and the rollback:\n%s", code, fingerprint, out)
	}
	if h.CurrentSystem() != v1 || h.BootDefault() != v1 {
		t.Fatalf("after the failed health check the host runs %q, boots %q; want %s", h.CurrentSystem(), h.BootDefault(), v1)
	}
	for _, text := range []string{out, agentLog(), s.log.String()} {
		if strings.Contains(text, secret) {
			t.Fatal("a log or the apply's output shows the secret")
		}
	}

	// With the agent stopped, v3 is published without waiting: the host
	// has not reported it, which is no change to make.
	stopAgent(t, h)
	writeDeployment(t, dep, pullDir.Path, hostKey, v3, secret, false)
	if out, code := landscaper(t, dep, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply v3 without wait: exit %d\n%s", code, out)
	}
	if o := testbin.StateOutputs(t, dep)["web"]; o["status"] != "pending" || o["current"] != v1 {
		t.Fatalf("outputs after publishing v3 without wait: %v", o)
	}
	if out, code := landscaper(t, dep, "plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan with the host catching up: exit %d:\n%s", code, out)
	}
	startAgent(t, h, s, "--interval", "1h")
	waitFor(t, "the restarted agent to activate v3", 2*time.Minute, func() bool { return h.CurrentSystem() == v3 && h.BootDefault() == v3 })
	waitFor(t, "the report of v3", time.Minute, func() bool {
		rep, ok := latestReport(t, pullDir, h)
		return ok && rep.Current == v3 && rep.Result == pulldir.ResultActivated
	})
	out, code = landscaper(t, dep, "apply", "--auto-approve", "--refresh-only")
	if code != 0 || !strings.Contains(out, "changed outside landscaper") || !strings.Contains(out, `"pending" -> "activated"`) {
		t.Fatalf("refresh after the host reported: exit %d, want the report shown:\n%s", code, out)
	}

	// Someone activates v1 by hand, and a health check will fail: only
	// the trigger starts a cycle within this test (the agent waits an
	// hour otherwise); the agent activates v3 again, its check fails, it
	// rolls back to v1 and reports so. The plan shows the host behind.
	if out, err := h.Exec(context.Background(), shq(v1+"/bin/switch-to-configuration")+" test && touch /run/fail-checks"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	before := len(h.Activations())
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	if out, err := h.Exec(context.Background(), shq(bin)+" agent --trigger --state-dir /run/landscaper-agent"); err != nil {
		t.Fatalf("trigger: %v: %s", err, out)
	}
	waitFor(t, "the triggered agent's report", 2*time.Minute, func() bool {
		rep, ok := latestReport(t, pullDir, h)
		return ok && rep.Result == pulldir.ResultRolledBack
	})
	if acts := h.Activations()[before:]; len(acts) != 2 || acts[0] != v3+" test" || acts[1] != v1+" test" {
		t.Fatalf("after the trigger: activations %v, want v3's test then v1's", acts)
	}
	out, code = landscaper(t, dep, "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "does not run its published system") || !strings.Contains(out, "rolled-back") {
		t.Fatalf("plan with the host behind: exit %d, want an update and the host shown behind:\n%s", code, out)
	}
	if out, err := h.Exec(context.Background(), "rm /run/fail-checks"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	writeDeployment(t, dep, pullDir.Path, hostKey, v3, secret, true)
	if out, code := landscaper(t, dep, "apply", "--auto-approve"); code != 0 || h.CurrentSystem() != v3 {
		t.Fatalf("apply to bring the host back: exit %d, host runs %s\n%s", code, h.CurrentSystem(), out)
	}
}
