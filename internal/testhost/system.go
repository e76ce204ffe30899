package testhost

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// Failure is how a stand-in system's switch-to-configuration misbehaves
// when asked to activate it (test or switch).
type Failure string

const (
	// Works activates: /run/current-system points at it, and sshd is
	// started again if it is not running.
	Works Failure = ""
	// Exit1 fails its pre-switch checks without changing anything.
	Exit1 Failure = "exit1"
	// Exit2 points /run/current-system at itself, then reports a failed
	// activation script.
	Exit2 Failure = "exit2"
	// Exit4 activates, then reports units broken.service and
	// other.service failed.
	Exit4 Failure = "exit4"
	// Exit100 asks for a reboot without activating.
	Exit100 Failure = "exit100"
	// Hang never returns.
	Hang Failure = "hang"
	// KillSSHD activates and kills the listening sshd.
	KillSSHD Failure = "killsshd"
	// BootFails activates, but `boot` fails to install the boot loader.
	BootFails Failure = "bootfail"
)

// System describes a stand-in NixOS toplevel.
type System struct {
	// Name makes systems with the same behaviour differ ("v1", "v2").
	Name    string
	Failure Failure
	// Healthy puts a file "healthy" in the toplevel, for health checks
	// such as `test -e /run/current-system/healthy`.
	Healthy bool
	// Packages are store path names ("hello-2.12") of stand-in packages
	// in the system's closure (each a one-file derivation, linked from
	// sw/): systems that differ by known packages.
	Packages []string
	// Units maps systemd unit names to their contents: each becomes a
	// store file linked from etc/systemd/system/.
	Units map[string]string
	// Kernel, when set, names a stand-in kernel package ("linux-6.1.0")
	// linked as the system's kernel.
	Kernel string
}

// switchToConfiguration is the stand-in's bin/switch-to-configuration.
// @out@ and @failure@ are filled in by the builder.
const switchToConfiguration = `#!/bin/sh
self=@out@
failure=@failure@
action="$1"
mkdir -p /nix/var/standin
echo "$self $action" >> /nix/var/standin/log
case "$action" in
test|switch)
	case "$failure" in
	exit1) echo "Pre-switch checks failed" >&2; exit 1 ;;
	exit2) ln -sfn "$self" /run/current-system; echo "Activation script snippet 'users' failed (1)" >&2; exit 2 ;;
	exit4) ln -sfn "$self" /run/current-system; echo "warning: the following units failed: broken.service, other.service" >&2; exit 4 ;;
	exit100) echo "The new system changes the init interface; it won't take effect until you reboot" >&2; exit 100 ;;
	hang) sleep 2147483647; exit 0 ;;
	killsshd)
		ln -sfn "$self" /run/current-system
		# Gone before the activation reports success, as a broken sshd
		# unit would be: a deployer that connects at once must not find
		# the old listener still accepting.
		pid=$(cat /run/sshd.pid); kill "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
		exit 0 ;;
	esac
	ln -sfn "$self" /run/current-system
	if ! kill -0 "$(cat /run/sshd.pid 2>/dev/null)" 2>/dev/null; then
		/usr/sbin/sshd -f /etc/ssh/sshd_config -E /run/sshd.log
	fi
	;;
boot) ;;
*) echo "usage: switch-to-configuration [switch|boot|test]" >&2; exit 1 ;;
esac
case "$action" in
boot|switch)
	if [ "$failure" = bootfail ]; then echo "Failed to install bootloader" >&2; exit 1; fi
	echo "$self" > /nix/var/standin/boot-default.tmp && mv /nix/var/standin/boot-default.tmp /nix/var/standin/boot-default
	;;
esac
exit 0
`

// Expression is a Nix expression for the stand-in system, built with
// builtins.derivation (no nixpkgs).
func (s System) Expression() string {
	healthy := ""
	if s.Healthy {
		healthy = "1"
	}
	name := "nixos-system-standin-" + s.Name
	if s.Failure != Works {
		name += "-" + string(s.Failure)
	}
	var packages, units strings.Builder
	for _, p := range s.Packages {
		fmt.Fprintf(&packages, " (file %q %q)", p, p)
	}
	unitNames := make([]string, 0, len(s.Units))
	for u := range s.Units {
		unitNames = append(unitNames, u)
	}
	sort.Strings(unitNames)
	for _, u := range unitNames {
		fmt.Fprintf(&units, " (file %q %s)", "unit-"+u, nixString(s.Units[u]))
	}
	kernel := `""`
	if s.Kernel != "" {
		kernel = fmt.Sprintf("(file %q %q)", s.Kernel, s.Kernel)
	}
	return fmt.Sprintf(`let
  file = name: text: derivation {
    inherit name text;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "printf %%s \"$text\" > $out" ];
  };
in derivation {
  name = %q;
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  failure = %q;
  healthy = %q;
  stc = %s;
  packages = [%s ];
  units = [%s ];
  unitNames = %s;
  kernel = %s;
  args = [ "-c" ''
    mkdir -p $out/bin $out/sw $out/etc/systemd/system
    printf '%%s' "$stc" | sed -e "s|@out@|$out|g" -e "s|@failure@|$failure|g" > $out/bin/switch-to-configuration
    chmod +x $out/bin/switch-to-configuration
    if [ -n "$healthy" ]; then echo ok > $out/healthy; fi
    echo 1 > $out/init-interface-version
    for p in $packages; do ln -s "$p" "$out/sw/''${p#*-}"; done
    set -- $unitNames
    for u in $units; do ln -s "$u" "$out/etc/systemd/system/$1"; shift; done
    if [ -n "$kernel" ]; then ln -s "$kernel" $out/kernel; fi
  '' ];
}`, name, string(s.Failure), healthy, nixString(switchToConfiguration), packages.String(), units.String(), nixString(strings.Join(unitNames, " ")), kernel)
}

// nixString quotes s as a Nix string.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// BuildSystem builds the stand-in system in this machine's store and
// returns its store path.
func BuildSystem(t testing.TB, s System) string {
	t.Helper()
	cmd := exec.Command("nix-build", "--no-out-link", "-E", s.Expression())
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build stand-in system %s: %v\n%s", s.Name, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
