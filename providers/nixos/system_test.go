package nixos_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestRotateThenActivate is the install path: wait for the installer's key,
// rotate it, then copy and activate a system pinned to the new key; a
// second apply changes nothing.
func TestRotateThenActivate(t *testing.T) {
	t.Parallel()
	installerKey := newKeyPair(t)
	f := newFixture(t, testhost.Options{HostKey: installerKey.Private})
	v1 := testhost.BuildSystem(t, testhost.System{Name: "rotate-v1", Healthy: true})

	hk := f.conn()
	hk["expectedHostKey"] = installerKey.Public
	hk["timeout"] = 30
	keyState, diags, _ := f.create(t, hostKeyType, hk)
	if diags.HasError() {
		t.Fatalf("host-key: %v", diags.Err())
	}
	rotated := outputString(t, keyState, "hostPublicKey")
	if rotated == "" || rotated == installerKey.Public {
		t.Fatalf("hostPublicKey = %q, want a new key", rotated)
	}
	if got := f.host.HostPublicKey(); !strings.HasPrefix(got, rotated) {
		t.Fatalf("host has key %q on disk, output says %q", got, rotated)
	}
	if fi, err := os.Stat(filepath.Join(f.host.Dir, "etc-ssh", "ssh_host_ed25519_key")); err != nil {
		t.Errorf("rotated private host key: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("rotated private host key has mode %v, want 0600", fi.Mode().Perm())
	}
	// Read: the host presents the rotated key.
	if r := f.h.Read(hostKeyType, keyState); !r.Exists || r.Diagnostics.HasError() {
		t.Fatalf("Read after rotation: exists=%v %v", r.Exists, r.Diagnostics.Err())
	}

	in := f.conn()
	in["hostPublicKey"] = rotated
	in["toplevel"] = v1
	in["healthChecks"] = []any{map[string]any{"command": "test -e /run/current-system/healthy"}}
	sys, diags, ev := f.create(t, systemType, in)
	if diags.HasError() {
		t.Fatalf("system: %v\nlog: %v", diags.Err(), ev.Logs)
	}
	if got := f.host.CurrentSystem(); got != v1 {
		t.Errorf("current system %q, want %q", got, v1)
	}
	if got := f.host.ProfileSystem(); got != v1 {
		t.Errorf("system profile %q, want %q", got, v1)
	}
	if got := f.host.BootDefault(); got != v1 {
		t.Errorf("boot default %q, want %q", got, v1)
	}
	if outputString(t, sys, "toplevel") != v1 || outputString(t, sys, "current") != v1 {
		t.Errorf("outputs %s", sys.Outputs.JSON)
	}
	acts := f.host.Activations()
	if len(acts) != 2 || acts[0] != v1+" test" || acts[1] != v1+" boot" {
		t.Errorf("activations %q, want test then boot of %s", acts, v1)
	}

	// Refresh and plan: nothing to do.
	r := f.h.Read(systemType, sys)
	if r.Diagnostics.HasError() || !r.Exists {
		t.Fatalf("Read: %v", r.Diagnostics.Err())
	}
	refreshed := &resource.State{Inputs: sys.Inputs, Outputs: r.Outputs}
	if p := f.h.Plan(systemType, refreshed, in); p.Action != resource.ActionNoop {
		t.Fatalf("second plan: %s, want no-op (%v)", p.Action, p.Diagnostics)
	}
	// An apply anyway (an update of another input) activates nothing.
	in["confirmTimeout"] = 20
	if _, diags, _ := f.update(t, systemType, refreshed, in); diags.HasError() {
		t.Fatalf("second apply: %v", diags.Err())
	}
	if got := f.host.Activations(); len(got) != 2 {
		t.Errorf("second apply ran switch-to-configuration: %q", got)
	}

	// Drift: the host runs something else; the plan updates.
	drift := testhost.BuildSystem(t, testhost.System{Name: "rotate-drift"})
	in2 := f.conn()
	in2["hostPublicKey"] = rotated
	in2["toplevel"] = drift
	if _, diags, _ := f.create(t, systemType, in2); diags.HasError() {
		t.Fatalf("activate another system: %v", diags.Err())
	}
	r = f.h.Read(systemType, sys)
	refreshed = &resource.State{Inputs: sys.Inputs, Outputs: r.Outputs}
	if p := f.h.Plan(systemType, refreshed, in); p.Action != resource.ActionUpdate {
		t.Fatalf("plan after drift: %s, want update", p.Action)
	}
}

// TestFailedUpgradeRollsBack: an upgrade that fails in any way leaves the
// previous system current and the boot default, and says so.
func TestFailedUpgradeRollsBack(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		system  testhost.System
		extra   map[string]any
		step    string
		wantErr []string
		// ranBoot is whether the new system's boot step ran.
		ranBoot bool
	}{
		{name: "exit 1", system: testhost.System{Failure: testhost.Exit1}, step: "activate",
			wantErr: []string{"exited with status 1", "pre-switch checks", "Pre-switch checks failed"}},
		{name: "exit 2", system: testhost.System{Failure: testhost.Exit2}, step: "activate",
			wantErr: []string{"exited with status 2", "activation script failed"}},
		{name: "exit 4", system: testhost.System{Failure: testhost.Exit4}, step: "activate",
			wantErr: []string{"exited with status 4", "units failed (broken.service, other.service)"}},
		{name: "exit 100", system: testhost.System{Failure: testhost.Exit100}, step: "activate",
			wantErr: []string{"exited with status 100", "reboot is needed"}},
		{name: "hang", system: testhost.System{Failure: testhost.Hang}, extra: map[string]any{"activationTimeout": 2}, step: "activate",
			wantErr: []string{"did not finish within activationTimeout"}},
		{name: "health check", system: testhost.System{Healthy: false}, step: "health checks",
			extra:   map[string]any{"healthChecks": []any{map[string]any{"command": "test -e /run/current-system/healthy", "retries": 1, "interval": 0.1}}},
			wantErr: []string{`health check "test -e /run/current-system/healthy" failed 2 times`}},
		{name: "boot loader", system: testhost.System{Failure: testhost.BootFails}, step: "boot entry", ranBoot: true,
			wantErr: []string{"Failed to install bootloader"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, testhost.Options{})
			v1 := testhost.BuildSystem(t, testhost.System{Name: "v1", Healthy: true})
			tc.system.Name = "v2"
			v2 := testhost.BuildSystem(t, tc.system)
			okChecks := map[string]any{"healthChecks": []any{map[string]any{"command": "test -e /run/current-system/healthy"}}}
			prior, diags, _ := f.create(t, systemType, f.systemInputs(v1, okChecks))
			if diags.HasError() {
				t.Fatalf("first deployment: %v", diags.Err())
			}
			_, diags, ev := f.update(t, systemType, prior, f.systemInputs(v2, tc.extra))
			if !diags.HasError() {
				t.Fatalf("upgrade to a failing system succeeded; log %q", ev.Logs)
			}
			msg := diags.Err().Error()
			t.Logf("the error: %s", msg)
			for _, want := range append(tc.wantErr, tc.step+" failed", "rolled back") {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not say %q:\n%s", want, msg)
				}
			}
			if got := f.host.CurrentSystem(); got != v1 {
				t.Errorf("current system %q, want the previous %q", got, v1)
			}
			if got := f.host.ProfileSystem(); got != v1 {
				t.Errorf("system profile %q, want the previous %q", got, v1)
			}
			if got := f.host.BootDefault(); got != v1 {
				t.Errorf("boot default %q, want the previous %q", got, v1)
			}
			acts := f.host.Activations()
			if n := countLines(acts, v1+" test"); n != 2 {
				t.Errorf("previous system activated %d times, want 2 (deploy, rollback): %q", n, acts)
			}
			if got := countLines(acts, v2+" boot") > 0; got != tc.ranBoot {
				t.Errorf("boot step of the failing system ran: %v, want %v: %q", got, tc.ranBoot, acts)
			}
		})
	}
}

// TestSSHDKilledRollsBackOnItsOwn: a system that kills sshd is reverted by
// the target within confirmTimeout, sshd comes back, and the apply says it
// rolled back.
func TestSSHDKilledRollsBackOnItsOwn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testhost.Options{})
	v1 := testhost.BuildSystem(t, testhost.System{Name: "v1", Healthy: true})
	bad := testhost.BuildSystem(t, testhost.System{Name: "v2", Failure: testhost.KillSSHD})
	prior, diags, _ := f.create(t, systemType, f.systemInputs(v1, nil))
	if diags.HasError() {
		t.Fatalf("first deployment: %v", diags.Err())
	}
	_, diags, ev := f.update(t, systemType, prior, f.systemInputs(bad, map[string]any{"confirmTimeout": 3}))
	if !diags.HasError() {
		t.Fatalf("a system that kills sshd was reported as deployed; log %q", ev.Logs)
	}
	msg := diags.Err().Error()
	t.Logf("the error: %s", msg)
	for _, want := range []string{"new SSH connection after activation failed", "rolled back", v1} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if got := f.host.CurrentSystem(); got != v1 {
		t.Errorf("current system %q, want %q", got, v1)
	}
	if got := f.host.BootDefault(); got != v1 {
		t.Errorf("boot default %q, want %q", got, v1)
	}
	if !f.host.SSHDRunning() {
		t.Errorf("sshd is not running after the rollback")
	}
	if acts := f.host.Activations(); countLines(acts, bad+" test") != 1 || countLines(acts, v1+" test") != 2 {
		t.Errorf("activations %q", acts)
	}
}

// TestActions: "test" activates without touching the boot default; "boot"
// makes the boot default without activating, and says a reboot is needed.
func TestActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testhost.Options{})
	v1 := testhost.BuildSystem(t, testhost.System{Name: "actions-v1"})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "actions-v2"})
	v3 := testhost.BuildSystem(t, testhost.System{Name: "actions-v3"})
	prior, diags, _ := f.create(t, systemType, f.systemInputs(v1, nil))
	if diags.HasError() {
		t.Fatal(diags.Err())
	}

	st, diags, _ := f.update(t, systemType, prior, f.systemInputs(v2, map[string]any{"action": "test"}))
	if diags.HasError() {
		t.Fatalf("action test: %v", diags.Err())
	}
	if cur, prof, boot := f.host.CurrentSystem(), f.host.ProfileSystem(), f.host.BootDefault(); cur != v2 || prof != v1 || boot != v1 {
		t.Errorf("after action test: current %s, profile %s, boot default %s; want v2, v1, v1", cur, prof, boot)
	}
	if p := f.h.Plan(systemType, &resource.State{Inputs: st.Inputs, Outputs: f.h.Read(systemType, st).Outputs}, f.systemInputs(v2, map[string]any{"action": "test"})); p.Action != resource.ActionNoop {
		t.Errorf("plan after action test: %s, want no-op", p.Action)
	}

	st, diags, _ = f.update(t, systemType, st, f.systemInputs(v3, map[string]any{"action": "boot"}))
	if diags.HasError() {
		t.Fatalf("action boot: %v", diags.Err())
	}
	if cur, prof, boot := f.host.CurrentSystem(), f.host.ProfileSystem(), f.host.BootDefault(); cur != v2 || prof != v3 || boot != v3 {
		t.Errorf("after action boot: current %s, profile %s, boot default %s; want v2, v3, v3", cur, prof, boot)
	}
	if !strings.Contains(string(st.Outputs.JSON), `"needsReboot":true`) {
		t.Errorf("action boot outputs %s, want needsReboot true", st.Outputs.JSON)
	}
	if n := countLines(f.host.Activations(), v3+" test"); n != 0 {
		t.Errorf("action boot activated the system %d times", n)
	}
}
