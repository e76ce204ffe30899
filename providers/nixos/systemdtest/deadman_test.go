package systemdtest

import (
	"context"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/systemdhost"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// confirmTimeout is the dead-man switch's window in these tests.
const confirmTimeout = 5

// TestDeadManSwitchWhenTheConnectionIsCut: the deployer's traffic to the
// target is dropped while the new system activates (the link goes down;
// sshd is untouched): no new connection can reach the target, which
// re-activates the previous system by itself. Once the link is back, the
// apply reports the rollback.
func TestDeadManSwitchWhenTheConnectionIsCut(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	v1 := systemdhost.BuildSystem(t, systemdhost.System{Name: "cut-v1", Units: []string{"standin-web.service"}})
	v2 := systemdhost.BuildSystem(t, systemdhost.System{Name: "cut-v2", Units: []string{"standin-web.service"}, Held: true})
	tg.deploy(t, "root", v1, nil)

	ctx := context.Background()
	t.Cleanup(func() { _ = tg.c.RestoreNetwork(ctx) })
	result := make(chan error, 1)
	go func() {
		_, err := tg.create(t, tg.provider, systemType, tg.systemInputs(t, "root", v2, map[string]any{"confirmTimeout": confirmTimeout, "activationTimeout": 60}))
		result <- err
	}()
	waitFor(t, "the activation of v2 to start", func() bool { return tg.c.ActivationStarted("cut-v2") })
	if err := tg.c.CutNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	tg.c.Release(t, "cut-v2")
	waitFor(t, "the target to roll back on its own", func() bool {
		return strings.HasPrefix(tg.supervisorStatus(t), "rolled-back")
	})
	if s := tg.supervisorStatus(t); s != "rolled-back no-new-connection 0" {
		t.Errorf("supervisor status %q, want a rollback for want of a new connection", s)
	}
	if got := tg.c.CurrentSystem(t); got != v1 {
		t.Errorf("cut off, the target runs %q, want %s", got, v1)
	}
	if err := tg.c.RestoreNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	err := <-result
	if err == nil {
		t.Fatal("the apply succeeded although the target rolled back")
	}
	t.Logf("the apply says: %v", err)
	contains(t, "the error", err.Error(), "no new SSH connection reached the host within confirmTimeout", "rolled back", v1)
	if f := tg.failedUnits(t); f != "" {
		t.Errorf("failed units after the rollback:\n%s", f)
	}
}

// TestProviderKilledMidActivation: the provider (the process that holds
// the SSH connections; a killed apply takes it with it) is killed with
// SIGKILL while the new system activates. The target finishes the
// activation, waits for the deployer in vain and re-activates the
// previous system by itself; its lock is free and nothing is left failed,
// so the next apply goes through.
func TestProviderKilledMidActivation(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	v1 := systemdhost.BuildSystem(t, systemdhost.System{Name: "kill-v1", Units: []string{"standin-web.service"}})
	v2 := systemdhost.BuildSystem(t, systemdhost.System{Name: "kill-v2", Units: []string{"standin-web.service", "standin-new.service"}, Held: true})
	tg.deploy(t, "root", v1, nil)

	doomed := sdktest.LaunchBinary(t, providerPackage)
	result := make(chan error, 1)
	go func() {
		_, err := tg.create(t, doomed, systemType, tg.systemInputs(t, "root", v2, map[string]any{"confirmTimeout": confirmTimeout}))
		result <- err
	}()
	waitFor(t, "the activation of v2 to start", func() bool { return tg.c.ActivationStarted("kill-v2") })
	killProvider(t, doomed)
	if err := <-result; err == nil {
		t.Fatal("Create returned no error from a killed provider")
	}
	tg.c.Release(t, "kill-v2")
	// The activation goes on without the deployer: v2 becomes current,
	// then the dead-man switch puts v1 back.
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
	if left := tg.exec(t, "systemctl list-units --all --no-legend --plain 'landscaper-activate-*'"); left != "" {
		t.Errorf("transient units left after the rollback:\n%s", left)
	}
	if f := tg.failedUnits(t); f != "" {
		t.Errorf("failed units after the rollback:\n%s", f)
	}
	// The next apply (a new provider) is not held up by the killed one.
	tg.deploy(t, "root", v2, map[string]any{"confirmTimeout": confirmTimeout})
}

// TestSupervisorKilledOnTheTarget: the supervisor's unit is killed on the
// target while the new system activates (systemctl kill: every process of
// the unit). The apply must not wait out its timeouts for a status that
// will never come: it reports promptly that the supervisor ended without a
// result, and what the host runs.
func TestSupervisorKilledOnTheTarget(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	v1 := systemdhost.BuildSystem(t, systemdhost.System{Name: "killsup-v1", Units: []string{"standin-web.service"}})
	v2 := systemdhost.BuildSystem(t, systemdhost.System{Name: "killsup-v2", Units: []string{"standin-web.service"}, Held: true})
	tg.deploy(t, "root", v1, nil)

	result := make(chan error, 1)
	go func() {
		// activationTimeout bounds what the deployer would otherwise
		// wait: activationTimeout + 1 minute, then as long again.
		_, err := tg.create(t, tg.provider, systemType, tg.systemInputs(t, "root", v2, map[string]any{"confirmTimeout": confirmTimeout, "activationTimeout": 600}))
		result <- err
	}()
	waitFor(t, "the activation of v2 to start", func() bool { return tg.c.ActivationStarted("killsup-v2") })
	tg.exec(t, "systemctl kill --signal=KILL 'landscaper-activate-*.service'")
	// Without the check for a gone supervisor the call would end at the
	// test's own bound on it (callTimeout), with another error.
	err := <-result
	if err == nil {
		t.Fatal("the apply succeeded although its supervisor was killed")
	}
	t.Logf("the apply says: %v", err)
	contains(t, "the error", err.Error(), "the activation supervisor on the target ended without a result", "landscaper-activate-", "the host runs "+v1)
}
