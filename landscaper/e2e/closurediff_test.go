package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// systemDeployment is one nixos.system member whose toplevel is the
// stand-in system s, built from the deployment (so the plan knows its
// derivation).
func systemDeployment(h *testhost.Host, s testhost.System) string {
	return `{ members, providers, ... }:
{
  members.web = {
    type = providers.nixos.system;
    inputs = {
      address = "127.0.0.1";
      port = ` + itoa(h.Port) + `;
      privateKey = builtins.readFile ./login-key;
      hostPublicKey = "` + h.HostPublicKey() + `";
      toplevel = "${` + s.Expression() + `}";
      confirmTimeout = 20;
    };
  };
}
`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestPlanTellsWhatChangesOnTheMachine: after a host runs a system, the
// plan of a new one that is not built says so and names it; plan --build
// builds it and shows the packages that change (one line by default,
// every line with --details, structured in --json); apply then runs it.
func TestPlanTellsWhatChangesOnTheMachine(t *testing.T) {
	login := testhost.NewKeyPair(t)
	host := testhost.Start(t, testhost.Options{AuthorizedKeys: login.Public + "\n"})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login-key"), []byte(login.Private), 0o600); err != nil {
		t.Fatal(err)
	}
	// Names unique to this run, so the new system is not in the store yet.
	nonce := strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	v1 := testhost.System{Name: "e2e-diff-v1-" + nonce, Packages: []string{"hello-2.12", "curl-8.1.0", "gone-1.0"}}
	v2 := testhost.System{Name: "e2e-diff-v2-" + nonce, Packages: []string{"hello-2.12", "curl-8.2.1", "fresh-3.0"}}

	writeFile(t, dir, "landscaper.nix", systemDeployment(host, v1))
	mustRun(t, dir, 0, "apply", "--auto-approve")

	writeFile(t, dir, "landscaper.nix", systemDeployment(host, v2))
	plan, _ := mustRun(t, dir, 0, "plan")
	if !strings.Contains(plan, "nixos-system-standin-"+v2.Name+" is not built yet") {
		t.Errorf("the plan of an unbuilt system does not say so, naming it:\n%s", plan)
	}

	plan, _ = mustRun(t, dir, 0, "plan", "--build")
	for _, want := range []string{"packages: 1 added, 1 removed, 1 changed", "to copy: ", "more lines: --details)"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan --build does not say %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "[C] curl") {
		t.Errorf("plan without --details lists the packages:\n%s", plan)
	}
	plan, _ = mustRun(t, dir, 0, "plan", "--details")
	for _, want := range []string{"[C] curl: 8.1.0 -> 8.2.1", "[A] fresh: 3.0", "[R] gone: 1.0"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan --details does not say %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "OPENSSH PRIVATE KEY") {
		t.Errorf("the login key appears in the plan")
	}

	out, _ := mustRun(t, dir, 0, "plan", "--json")
	var details struct {
		Summary string `json:"summary"`
		Data    struct {
			From    string `json:"from"`
			Built   bool   `json:"built"`
			Changed []struct {
				Name   string   `json:"name"`
				Before []string `json:"before"`
				After  []string `json:"after"`
			} `json:"changed"`
		} `json:"data"`
	}
	for _, line := range strings.Split(out, "\n") {
		var ev struct {
			Kind    string `json:"kind"`
			Changes []struct {
				Member  string          `json:"member"`
				Details json.RawMessage `json:"details"`
			} `json:"changes"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Kind != "plan" {
			continue
		}
		for _, c := range ev.Changes {
			if c.Member == "web" && c.Details != nil {
				if err := json.Unmarshal(c.Details, &details); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if !details.Data.Built || details.Data.From != host.CurrentSystem() || len(details.Data.Changed) != 1 || details.Data.Changed[0].Name != "curl" || details.Summary == "" {
		t.Errorf("plan --json details: %+v\n%s", details, out)
	}

	// A saved plan keeps the details, and is applied as it is.
	mustRun(t, dir, 0, "plan", "--out", "web.plan")
	show, _ := mustRun(t, dir, 0, "show", "--details", "web.plan")
	if !strings.Contains(show, "[C] curl: 8.1.0 -> 8.2.1") {
		t.Errorf("show --details of the saved plan does not list the packages:\n%s", show)
	}
	mustRun(t, dir, 0, "apply", "web.plan")
	if cur := host.CurrentSystem(); !strings.Contains(cur, v2.Name) {
		t.Errorf("the host runs %q after apply, want %s", cur, v2.Name)
	}
	plan, _ = mustRun(t, dir, 0, "plan")
	if !strings.Contains(plan, "No changes.") {
		t.Errorf("plan after apply:\n%s", plan)
	}
	_ = exec.Command("nix-store", "--delete", host.CurrentSystem()).Run()
}
