package pulltest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// fleetDeployment is five nixos.pull members, waiting for their hosts'
// reports, in a rollout of one host at a time with a failure budget of
// one.
const fleetDeployment = `{ members, providers, ... }:
let
  p = import ./params.nix;
  pulled = key: {
    type = providers.nixos.pull;
    inputs = {
      pullDir = p.pullDir;
      hostPublicKey = key;
      toplevel = p.toplevel;
      healthChecks = [ { command = "test -e /run/current-system/healthy && test ! -e /run/fail-checks"; retries = 0; timeout = 5; } ];
      confirmTimeout = 10;
      wait = true;
      waitTimeout = 120;
    };
  };
in
{
  members = builtins.listToAttrs (builtins.genList (i: { name = "host${toString i}"; value = pulled (builtins.elemAt p.keys i); }) 5);
  rollouts.fleet = { members = [ "host0" "host1" "host2" "host3" "host4" ]; batchSize = 1; maxFailures = 1; };
}
`

// TestRolloutOfPulledHostsStopsAtTheBudget: a rollout over nixos.pull
// members completes a batch when its host reports; two hosts that roll
// back exceed a budget of one, and the hosts after them are not reached.
func TestRolloutOfPulledHostsStopsAtTheBudget(t *testing.T) {
	pullDir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, pullDir, 0)
	v1 := testhost.BuildSystem(t, testhost.System{Name: "fleet-v1", Healthy: true})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "fleet-v2", Healthy: true})
	hosts := make([]*pullHost, 5)
	keys := make([]string, 5)
	for i := range hosts {
		hosts[i] = startHost(t)
		keys[i] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hosts[i].key)))
		startAgent(t, hosts[i], s, "--interval", "1h")
	}
	dep := t.TempDir()
	write := func(toplevel string) {
		var quoted []string
		for _, k := range keys {
			quoted = append(quoted, fmt.Sprintf("%q", k))
		}
		params := fmt.Sprintf("{ pullDir = %q; toplevel = %q; keys = [ %s ]; }\n", pullDir.Path, toplevel, strings.Join(quoted, " "))
		for name, content := range map[string]string{"landscaper.nix": fleetDeployment, "params.nix": params} {
			if err := os.WriteFile(filepath.Join(dep, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(v1)
	if out, code := landscaper(t, dep, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply v1: exit %d\n%s", code, out)
	}
	for i, h := range hosts {
		if h.CurrentSystem() != v1 {
			t.Fatalf("host%d runs %s after v1", i, h.CurrentSystem())
		}
	}

	for _, i := range []int{1, 2} {
		if out, err := hosts[i].Exec(t.Context(), "touch /run/fail-checks"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	write(v2)
	out, code := landscaper(t, dep, "apply", "--auto-approve")
	if code == 0 || !strings.Contains(out, "rollout fleet: failed: host1, host2; updated: host0; not reached, left as they were: host3, host4") {
		t.Fatalf("apply v2: exit %d, want the rollout stopped after host2:\n%s", code, out)
	}
	want := []string{v2, v1, v1, v1, v1}
	for i, h := range hosts {
		if h.CurrentSystem() != want[i] {
			t.Errorf("host%d runs %s after the stopped rollout, want %s", i, h.CurrentSystem(), want[i])
		}
	}
	for _, i := range []int{3, 4} {
		if o := testbin.StateOutputs(t, dep)[fmt.Sprintf("host%d", i)]; o["generation"] != float64(1) {
			t.Errorf("host%d's generation is %v, want 1: a host not reached got nothing published", i, o["generation"])
		}
	}
}
