package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// rolloutDeployment is three nixos.system members on the hosts, updated by
// a rollout in order, each health-checked by "no /run/unhealthy".
func rolloutDeployment(hosts []*testhost.Host, toplevel string) string {
	var b strings.Builder
	b.WriteString("{ members, providers, ... }:\nlet\n  key = builtins.readFile ./login-key;\nin\n{\n")
	for i, h := range hosts {
		fmt.Fprintf(&b, `  members.h%d = {
    type = providers.nixos.system;
    inputs = {
      address = "127.0.0.1";
      port = %d;
      privateKey = key;
      hostPublicKey = %q;
      toplevel = %q;
      confirmTimeout = 20;
      healthChecks = [ { command = "test ! -e /run/unhealthy"; retries = 0; } ];
    };
  };
`, i+1, h.Port, h.HostPublicKey(), toplevel)
	}
	b.WriteString("  rollouts.fleet = { members = [ \"h1\" \"h2\" \"h3\" ]; };\n}\n")
	return b.String()
}

// TestRolloutStopsAtFirstFailure: three hosts, the second fails its health
// check: the first is updated, the second rolled back, the third never
// activates the new system; the apply fails naming the second. Once the
// check is fixed, a new apply finishes the rollout.
func TestRolloutStopsAtFirstFailure(t *testing.T) {
	login := testhost.NewKeyPair(t)
	authorized := login.Public + "\n"
	var hosts []*testhost.Host
	for range 3 {
		hosts = append(hosts, testhost.Start(t, testhost.Options{AuthorizedKeys: authorized}))
	}
	v1 := testhost.BuildSystem(t, testhost.System{Name: "rollout-v1"})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "rollout-v2"})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login-key"), []byte(login.Private), 0o600); err != nil {
		t.Fatal(err)
	}

	writeFile(t, dir, "landscaper.nix", rolloutDeployment(hosts, v1))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	for i, h := range hosts {
		if got := h.CurrentSystem(); got != v1 {
			t.Fatalf("h%d runs %q after the first apply, want %q", i+1, got, v1)
		}
	}

	// The second host's health check fails.
	unhealthy := filepath.Join(hosts[1].Dir, "run", "unhealthy")
	if err := os.WriteFile(unhealthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "landscaper.nix", rolloutDeployment(hosts, v2))
	plan, _ := mustRun(t, dir, 0, "plan")
	for _, want := range []string{"# rollout fleet: 3 batches of 1", "batch 1: h1", "batch 2: h2", "batch 3: h3"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan does not show %q:\n%s", want, plan)
		}
	}
	stdout, stderr := mustRun(t, dir, 1, "apply", "--auto-approve")
	out := stdout + stderr
	for _, want := range []string{"rollout fleet: failed: h2; updated: h1; not reached, left as they were: h3", "member h2 (nixos.system)", "health checks failed", "rolled back", "not reached: rollout fleet stopped after batch 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "OPENSSH PRIVATE KEY") {
		t.Errorf("the login key appears in the output")
	}
	want := []struct{ current, boot string }{{v2, v2}, {v1, v1}, {v1, v1}}
	for i, h := range hosts {
		if got := h.CurrentSystem(); got != want[i].current {
			t.Errorf("h%d runs %q, want %q", i+1, got, want[i].current)
		}
		if got := h.BootDefault(); got != want[i].boot {
			t.Errorf("h%d boots %q, want %q", i+1, got, want[i].boot)
		}
	}
	if n := countActivations(hosts[2], v2); n != 0 {
		t.Errorf("h3 activated the new system %d times, want never: %q", n, hosts[2].Activations())
	}
	if !hosts[2].HasPath(v2) {
		t.Errorf("h3 did not get the new closure ahead of its batch:\n%s", out)
	}

	// Fixed: the next apply continues where the rollout stopped.
	if err := os.Remove(unhealthy); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, 0, "apply", "--auto-approve")
	for i, h := range hosts {
		if got := h.CurrentSystem(); got != v2 {
			t.Errorf("after the fix h%d runs %q, want %q", i+1, got, v2)
		}
		if got := h.BootDefault(); got != v2 {
			t.Errorf("after the fix h%d boots %q, want %q", i+1, got, v2)
		}
	}
	if n := countActivations(hosts[0], v2); n != 1 {
		t.Errorf("h1 activated the new system %d times, want once", n)
	}
	stdout, _ = mustRun(t, dir, 0, "plan")
	if !strings.Contains(stdout, "No changes.") {
		t.Errorf("plan after the rollout finished:\n%s", stdout)
	}

	// Drift: someone activates the old system on h1 by hand. The plan
	// shows it and the apply puts the recorded system back.
	if out, err := hosts[0].Exec(context.Background(), v1+"/bin/switch-to-configuration test"); err != nil {
		t.Fatalf("activate by hand: %v: %s", err, out)
	}
	stdout, _ = mustRun(t, dir, 0, "plan")
	for _, want := range []string{"h1 (nixos.system) changed outside landscaper", "warning: the host does not run the recorded system", "1 to change"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan after drift does not say %q:\n%s", want, stdout)
		}
	}
	mustRun(t, dir, 0, "apply", "--auto-approve")
	if got := hosts[0].CurrentSystem(); got != v2 {
		t.Errorf("after repairing the drift h1 runs %q, want %q", got, v2)
	}
}

func countActivations(h *testhost.Host, system string) int {
	n := 0
	for _, a := range h.Activations() {
		if a == system+" test" {
			n++
		}
	}
	return n
}
