package systemdtest

import (
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/systemdhost"
)

// TestFailedUnitIsNamedAndRolledBack: a system whose activation leaves a
// unit failed (switch-to-configuration exits 4) is reported with the
// unit's name and rolled back; the previous system's units run again and
// nothing stays failed, so the next apply's pre-flight passes.
func TestFailedUnitIsNamedAndRolledBack(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	v1 := systemdhost.BuildSystem(t, systemdhost.System{Name: "failed-v1", Units: []string{"standin-web.service"}})
	v2 := systemdhost.BuildSystem(t, systemdhost.System{Name: "failed-v2", Units: []string{"standin-web.service"}, FailingUnits: []string{"standin-broken.service"}})
	tg.deploy(t, "root", v1, nil)

	_, err := tg.create(t, tg.provider, systemType, tg.systemInputs(t, "root", v2, nil))
	if err == nil {
		t.Fatal("deploying a system with a failing unit succeeded")
	}
	contains(t, "the error", err.Error(), "exited with status 4", "units failed (standin-broken.service)", "rolled back", v1)
	if got := tg.c.CurrentSystem(t); got != v1 {
		t.Errorf("after the rollback the container runs %q, want %s", got, v1)
	}
	if got := tg.c.BootDefault(); got != v1 {
		t.Errorf("boot default %q, want %s", got, v1)
	}
	if s := tg.supervisorStatus(t); s != "rolled-back exit-4 0" {
		t.Errorf("supervisor status %q, want the rollback after exit 4", s)
	}
	acts := tg.c.Activations()
	if n := len(acts); n < 2 || acts[n-2] != v2+" test" || acts[n-1] != v1+" test" {
		t.Errorf("activations %q: want %s test, then %s test", acts, v2, v1)
	}
	if s := tg.exec(t, "systemctl is-active standin-web.service || true"); s != "active" {
		t.Errorf("the previous system's standin-web.service is %q, want active", s)
	}
	if s := tg.exec(t, "systemctl is-failed standin-broken.service || true"); s == "failed" {
		t.Error("standin-broken.service is still failed after the rollback")
	}
	if f := tg.failedUnits(t); f != "" {
		t.Errorf("failed units after the rollback:\n%s", f)
	}
	// The next apply finds a healthy host.
	v3 := systemdhost.BuildSystem(t, systemdhost.System{Name: "failed-v3", Units: []string{"standin-web.service"}})
	tg.deploy(t, "root", v3, nil)
}

// TestPreflightRefusesAHostWithFailedUnits: before anything changes, a
// host on which systemd lists a failed unit is refused, naming the unit
// (README: the pre-flight refuses); nothing is copied or activated. Once
// the failure is reset, the same deployment goes through.
func TestPreflightRefusesAHostWithFailedUnits(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	v1 := systemdhost.BuildSystem(t, systemdhost.System{Name: "preflight-v1", Units: []string{"standin-web.service"}})
	v2 := systemdhost.BuildSystem(t, systemdhost.System{Name: "preflight-v2", Units: []string{"standin-web.service"}})
	tg.deploy(t, "root", v1, nil)
	tg.exec(t, "systemd-run --unit=standin-crashed --quiet /bin/false")
	waitFor(t, "standin-crashed.service to fail", func() bool {
		return strings.Contains(tg.failedUnits(t), "standin-crashed.service")
	})
	before := tg.c.Activations()

	for _, user := range []string{"root", "deploy"} {
		_, err := tg.create(t, tg.provider, systemType, tg.systemInputs(t, user, v2, nil))
		if err == nil {
			t.Fatalf("as %s: the pre-flight let a host with a failed unit through", user)
		}
		contains(t, "the error as "+user, err.Error(), "pre-flight failed", "systemd reports failed units", "standin-crashed.service", "nothing was changed", v1)
		if strings.Contains(err.Error(), "●") {
			t.Errorf("the error carries systemctl's decoration: %v", err)
		}
	}
	if got := tg.c.Activations(); len(got) != len(before) {
		t.Errorf("the refused deployments ran switch-to-configuration: %q", got[len(before):])
	}
	if got := tg.c.CurrentSystem(t); got != v1 {
		t.Errorf("the container runs %q, want %s", got, v1)
	}
	if tg.exec(t, "nix-store --check-validity "+v2+" 2>/dev/null && echo present || echo absent") != "absent" {
		t.Errorf("the refused deployment copied %s", v2)
	}

	tg.exec(t, "systemctl reset-failed standin-crashed.service")
	tg.deploy(t, "root", v2, nil)
}
