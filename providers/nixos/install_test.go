package nixos_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// buildCanary builds a store path holding an executable that leaves a mark
// at mark on whatever machine runs it: a disk script that must never run.
func buildCanary(t *testing.T, mark string) string {
	t.Helper()
	expr := `builtins.derivation { name = "disko-canary"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "PATH=/usr/bin:/bin; mkdir -p $out/bin; printf '#!/bin/sh\ntouch ` + mark + `\n' > $out/bin/disko; chmod +x $out/bin/disko" ]; }`
	out, err := exec.Command("nix-build", "--no-out-link", "-E", expr).Output()
	if err != nil {
		t.Fatalf("nix-build the canary: %v", err)
	}
	return strings.TrimSpace(string(out)) + "/bin/disko"
}

// A machine that is not running an installer is never wiped: the install
// stops at its safety pre-flight, names it and what it found, and the disk
// script never runs.
func TestInstallRefusesAMachineNotRunningAnInstaller(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testhost.Options{})
	canary := buildCanary(t, "/run/disko-ran")
	sys := testhost.BuildSystem(t, testhost.System{Name: "installed"})
	in := f.conn()
	in["hostPublicKey"] = f.host.HostPublicKey()
	in["toplevel"] = sys
	in["diskoScript"] = canary
	st, diags, _ := f.create(t, installType, in)
	if st != nil {
		t.Fatal("the installation went ahead on a machine without an installer")
	}
	msg := diags.Err().Error()
	for _, want := range []string{"safety pre-flight failed", "not running an installer", "/etc/landscaper-installer", "nothing was changed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	if out, err := f.host.Exec(context.Background(), "test -e /run/disko-ran && echo ran || echo untouched"); err != nil || strings.TrimSpace(out) != "untouched" {
		t.Errorf("the disk script ran on the host: %q (%v)", out, err)
	}
	if f.host.HasPath(sys) {
		t.Error("the system was copied to the host")
	}
}
