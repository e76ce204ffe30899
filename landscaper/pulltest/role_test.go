package pulltest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// roleDeployment is a nixos.pull-role member with a health check and a
// secret, in batches of three.
const roleDeployment = `{ members, providers, ... }:
let p = import ./params.nix; in
{
  members.web = {
    type = providers.nixos.pull-role;
    inputs = {
      pullDir = p.pullDir;
      role = "web";
      toplevel = p.toplevel;
      enrollToken = p.token;
      healthChecks = [ { command = "test -e /run/current-system/healthy && test ! -e /run/fail-checks"; retries = 0; timeout = 5; } ];
      confirmTimeout = 10;
      secrets."/run/keys/role-secret" = { contents = p.secret; mode = "0440"; };
      batchSize = 3;
      maxFailures = 0;
      waitTimeout = 120;
    };
  };
}
`

const (
	roleToken  = "cattle-token-6f1d2a9b8c7e5d4f"
	roleSecret = "the role's shared secret 91ab"
)

func writeRoleDeployment(t *testing.T, dir, pullDir, toplevel string) {
	t.Helper()
	params := fmt.Sprintf("{ pullDir = %q; toplevel = %q; token = %q; secret = %q; }\n", pullDir, toplevel, roleToken, roleSecret)
	for name, content := range map[string]string{"landscaper.nix": roleDeployment, "params.nix": params} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeToken puts an enrollment token in the host's /run/enroll-token.
func writeToken(t *testing.T, h *pullHost, token string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.Dir, "run", "enroll-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reportOf is the host's report of the generation, if it made one.
func reportOf(t *testing.T, dir pulldir.Dir, h *pullHost, gen int64) (pulldir.Report, bool) {
	t.Helper()
	reports, err := dir.Reports(h.id())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if r.Generation == gen {
			return r, true
		}
	}
	return pulldir.Report{}, false
}

// TestRoleEnrollsAndRollsOutInBatches: ten machines enroll in a role with
// its token and take its system and secret; a wrong token enrolls
// nothing; a new generation reaches the hosts batch by batch (a batch's
// hosts report it only after every host of the batch before did); a
// failing host stops the next rollout at the failure budget, the hosts
// not reached keep their system, and the plan shows the unfinished
// rollout.
func TestRoleEnrollsAndRollsOutInBatches(t *testing.T) {
	pullDir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, pullDir, 0)
	v1 := testhost.BuildSystem(t, testhost.System{Name: "role-v1", Healthy: true})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "role-v2", Healthy: true})
	v3 := testhost.BuildSystem(t, testhost.System{Name: "role-v3", Healthy: true})
	dep := t.TempDir()

	writeRoleDeployment(t, dep, pullDir.Path, v1)
	if out, code := landscaper(t, dep, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply v1: exit %d\n%s", code, out)
	}
	if o := testbin.StateOutputs(t, dep)["web"]; o["generation"] != float64(1) || o["completedGeneration"] != float64(1) {
		t.Fatalf("outputs after the first apply: %v", o)
	}

	const n = 10
	hosts := make([]*pullHost, n)
	for i := range hosts {
		hosts[i] = startHost(t)
		writeToken(t, hosts[i], roleToken)
		startAgent(t, hosts[i], s, "--interval", "1h", "--role", "web", "--enroll-token-file", "/run/enroll-token")
		// One at a time: the role's batches follow the enrollment order.
		h := hosts[i]
		waitFor(t, fmt.Sprintf("host %d to enroll", i), time.Minute, func() bool { _, ok := pullDir.HostRole(h.id()); return ok })
	}
	for i, h := range hosts {
		waitFor(t, fmt.Sprintf("host %d to run the role's v1", i), 3*time.Minute, func() bool {
			r, ok := reportOf(t, pullDir, h, 1)
			return ok && r.Result == pulldir.ResultActivated && h.CurrentSystem() == v1
		})
		if got, mode, err := hostFile(h, "/run/keys/role-secret"); err != nil || got != roleSecret || mode != 0o440 {
			t.Fatalf("host %d's role secret: %q %04o %v", i, got, mode, err)
		}
	}
	for _, f := range []string{"roles/web/enroll.key", "roles/web/desired.json", "roles/web/target.json"} {
		raw, err := os.ReadFile(filepath.Join(pullDir.Path, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), roleToken) || strings.Contains(string(raw), roleSecret) {
			t.Fatalf("%s holds the token or the secret in clear", f)
		}
	}

	// A machine with a wrong token is refused and enrolls nothing.
	stranger := startHost(t)
	writeToken(t, stranger, "not-the-role-token-0000")
	out, code := agentOnceArgs(t, stranger, s, filepath.Join(pullDir.Path, "server.pub"), "--role", "web", "--enroll-token-file", "/run/enroll-token")
	if code == 0 || !strings.Contains(out, "wrong enrollment token") {
		t.Fatalf("agent with a wrong token: exit %d, want a refusal naming the token:\n%s", code, out)
	}
	if _, ok := pullDir.HostRole(stranger.id()); ok || pullDir.Known(stranger.id()) {
		t.Fatal("the machine with a wrong token enrolled")
	}
	if m := scrape(t, s); !strings.Contains(m, `landscaper_pull_refused_total{reason="bad-token"} 1`) {
		t.Fatalf("metrics do not count the wrong token:\n%s", m)
	}

	// v2 in batches of three.
	writeRoleDeployment(t, dep, pullDir.Path, v2)
	out, code = landscaper(t, dep, "apply", "--auto-approve")
	if code != 0 || !strings.Contains(out, "batch 4 of 4") {
		t.Fatalf("apply v2: exit %d, want four batches:\n%s", code, out)
	}
	enrolled, err := pullDir.RoleHosts("web")
	if err != nil || len(enrolled) != n {
		t.Fatalf("hosts of the role: %d, %v", len(enrolled), err)
	}
	byID := map[string]*pullHost{}
	for _, h := range hosts {
		byID[h.id()] = h
	}
	var lastOfBatch time.Time
	for start := 0; start < n; start += 3 {
		var batchEnd time.Time
		for _, e := range enrolled[start:min(start+3, n)] {
			h := byID[e.ID]
			r, ok := reportOf(t, pullDir, h, 2)
			if !ok || r.Result != pulldir.ResultActivated || h.CurrentSystem() != v2 {
				t.Fatalf("host %s after v2: report %+v (%v), runs %s", e.ID, r, ok, h.CurrentSystem())
			}
			made := parseTime(t, r.Time)
			if !made.After(lastOfBatch) {
				t.Errorf("host %s (batch %d) reported v2 at %s, before the batch before it ended (%s)", e.ID, start/3+1, r.Time, lastOfBatch.Format(time.RFC3339Nano))
			}
			batchEnd = maxTime(batchEnd, parseTime(t, r.ReceivedAt))
		}
		lastOfBatch = batchEnd
	}
	o := testbin.StateOutputs(t, dep)["web"]
	if o["generation"] != float64(2) || o["completedGeneration"] != float64(2) || len(o["hosts"].([]any)) != n {
		t.Fatalf("outputs after v2: %v", o)
	}

	// v3, with the first host of the second batch failing its check:
	// the rollout stops there (maxFailures = 0).
	failing := byID[enrolled[3].ID]
	if out, err := failing.Exec(t.Context(), "touch /run/fail-checks"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	writeRoleDeployment(t, dep, pullDir.Path, v3)
	out, code = landscaper(t, dep, "apply", "--auto-approve")
	if code == 0 || !strings.Contains(out, "stopped after batch 2 of 4") || !strings.Contains(out, failing.id()) || !strings.Contains(out, "rolled-back") {
		t.Fatalf("apply v3 with a failing host: exit %d, want the rollout stopped naming %s:\n%s", code, failing.id(), out)
	}
	for i, e := range enrolled {
		h := byID[e.ID]
		want := v3
		switch {
		case e.ID == failing.id() || i >= 6:
			want = v2
		}
		if h.CurrentSystem() != want {
			t.Errorf("host %d (%s) runs %s after the stopped rollout, want %s", i, e.ID, h.CurrentSystem(), want)
		}
	}
	// The failed update recorded nothing: the plan offers it again, and
	// the refresh shows generation 3 published.
	if out, code := landscaper(t, dep, "plan", "--detailed-exitcode"); code != 2 || !strings.Contains(out, "web (nixos.pull-role) will be updated") || !strings.Contains(out, "outputs.generation: 2 -> 3") {
		t.Fatalf("plan after the stopped rollout: exit %d, want the rollout offered again:\n%s", code, out)
	}
	for _, text := range []string{out, s.log.String()} {
		if strings.Contains(text, roleToken) || strings.Contains(text, roleSecret) {
			t.Fatal("an output or the server's log shows the token or the secret")
		}
	}

	// Destroying the role forgets its hosts; they keep what they run.
	if out, code := landscaper(t, dep, "destroy", "--auto-approve"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	if pullDir.Known(hosts[0].id()) {
		t.Fatal("an enrolled host is still known after the role was destroyed")
	}
	if hosts[0].CurrentSystem() != v3 {
		t.Fatalf("host 0 runs %s after the destroy, want v3 still", hosts[0].CurrentSystem())
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
