package systemdtest

import (
	"regexp"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/systemdhost"
)

// activationUnit is the cgroup of the supervisor's transient unit, as the
// stand-in's activation sees it from inside.
var activationUnit = regexp.MustCompile(`^0::/system\.slice/landscaper-activate-[0-9a-z]+-[0-9]+\.service$`)

// TestActivationRunsInATransientUnit deploys as root and as a user with
// sudo: the supervisor (and the activation it runs) is a transient unit of
// the target's systemd, which collects it once it ended; the activation is
// confirmed and the system becomes the boot default.
func TestActivationRunsInATransientUnit(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, "")
	for _, tc := range []struct {
		name, user string
		system     systemdhost.System
		// managerPath, when set, is the PATH systemd gives the units it
		// starts (systemctl set-environment): NixOS's manager has only
		// systemd's own bin directory there, no coreutils, no flock.
		managerPath string
	}{
		{"root", "root", systemdhost.System{Name: "transient-root", Units: []string{"standin-web.service"}}, ""},
		{"sudo", "deploy", systemdhost.System{Name: "transient-sudo", Units: []string{"standin-web.service", "standin-db.service"}}, ""},
		{"NixOS's manager PATH", "root", systemdhost.System{Name: "transient-path", Units: []string{"standin-web.service"}}, "/usr/lib/systemd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.managerPath != "" {
				tg.exec(t, "systemctl set-environment PATH="+tc.managerPath)
				if unitPath := tg.exec(t, "systemd-run --quiet --wait --pipe /bin/sh -c 'echo $PATH'"); unitPath != tc.managerPath {
					t.Fatalf("a transient unit's PATH is %q, want %q", unitPath, tc.managerPath)
				}
			}
			toplevel := systemdhost.BuildSystem(t, tc.system)
			out := tg.deploy(t, tc.user, toplevel, nil)
			if out["profile"] != toplevel || tg.c.BootDefault() != toplevel {
				t.Errorf("profile output %v, boot default %q; want %s", out["profile"], tg.c.BootDefault(), toplevel)
			}
			cgroup := tg.c.ActivationCgroup(tc.system.Name)
			if !activationUnit.MatchString(cgroup) {
				t.Errorf("the activation ran in cgroup %q, not in a transient unit landscaper-activate-*.service", cgroup)
			}
			if s := tg.supervisorStatus(t); s != "confirmed" {
				t.Errorf("supervisor status %q, want confirmed", s)
			}
			journal := tg.exec(t, "journalctl --no-pager -o cat _PID=1")
			contains(t, "systemd's journal", journal, "Started landscaper-activate-")
			if left := tg.exec(t, "systemctl list-units --all --no-legend --plain 'landscaper-activate-*'"); left != "" {
				t.Errorf("transient units left after the activation:\n%s", left)
			}
			for _, u := range tc.system.Units {
				if s := tg.exec(t, "systemctl is-active "+u+" || true"); s != "active" {
					t.Errorf("%s is %q, want active", u, s)
				}
			}
			if f := tg.failedUnits(t); f != "" {
				t.Errorf("failed units after the deployment:\n%s", f)
			}
		})
	}
}
