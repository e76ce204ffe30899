package systemdhost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// System describes a stand-in NixOS toplevel for a systemd container,
// built with builtins.derivation (no nixpkgs). Its switch-to-configuration
// does what NixOS's does to systemd, in small: it links the system's units
// into /run/systemd/system (the previous system's go), points
// /run/current-system at itself, reloads systemd, forgets failed units
// (systemctl reset-failed, as NixOS's does), (re)starts its units, and
// exits 4 naming the units that failed, in NixOS's words. Each run is
// recorded in /nix/var/standin: "log" (one "<store path> <action>" line
// each), and "cgroup-<name>" and "started-<name>" (the cgroup the
// activation ran in; written before the activation's delay).
type System struct {
	// Name makes systems differ ("v1", "v2").
	Name string
	// Units are the system's units, all oneshot services: the ones here
	// succeed.
	Units []string
	// FailingUnits are units whose start fails (ExecStart=/bin/false).
	FailingUnits []string
	// Held activations wait, before they change anything, until the test
	// releases them (Container.Release), so that a test can act while one
	// runs whatever the machine's speed. A released system activates at
	// once from then on.
	Held bool
}

// switchToConfiguration is the stand-in's bin/switch-to-configuration;
// @out@, @name@ and @held@ are filled in by the builder.
const switchToConfiguration = `#!/bin/sh
# NixOS's switch-to-configuration names its programs by store path; the
# stand-in does not rely on the PATH it is given either.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
self=@out@
name=@name@
held=@held@
action="$1"
state=/nix/var/standin
mkdir -p "$state"
echo "$self $action" >>"$state/log"
case "$action" in
test|switch)
	cat /proc/self/cgroup >"$state/cgroup-$name"
	date +%s >"$state/started-$name"
	# Held: wait for the test's release (at most an hour).
	n=0
	while [ -n "$held" ] && [ ! -e "$state/release-$name" ] && [ "$n" -lt 72000 ]; do
		sleep 0.05
		n=$((n + 1))
	done
	mkdir -p /run/systemd/system
	for f in /run/systemd/system/standin-*.service; do
		[ -L "$f" ] || continue
		systemctl stop "$(basename "$f")" 2>/dev/null
		rm -f "$f"
	done
	for u in "$self"/units/*.service; do
		[ -e "$u" ] && ln -s "$u" /run/systemd/system/
	done
	ln -sfn "$self" /run/current-system
	systemctl daemon-reload || exit 2
	# NixOS's switch-to-configuration forgets earlier failures too.
	systemctl reset-failed
	failed=""
	for u in "$self"/units/*.service; do
		[ -e "$u" ] || continue
		n=$(basename "$u")
		systemctl restart "$n" 2>/dev/null || failed="$failed${failed:+, }$n"
	done
	if [ -n "$failed" ]; then
		echo "warning: the following units failed: $failed" >&2
		exit 4
	fi
	;;
boot)
	echo "$self" >"$state/boot-default.tmp" && mv "$state/boot-default.tmp" "$state/boot-default"
	;;
*)
	echo "usage: switch-to-configuration [switch|boot|test]" >&2
	exit 1
	;;
esac
exit 0
`

// unitFile is a stand-in unit running cmd.
func unitFile(system, cmd string) string {
	return fmt.Sprintf("[Unit]\nDescription=stand-in unit of system %s\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=%s\n", system, cmd)
}

// Expression is the Nix expression of the stand-in system.
func (s System) Expression() string {
	units := map[string]string{}
	for _, u := range s.Units {
		units[u] = unitFile(s.Name, "/bin/true")
	}
	for _, u := range s.FailingUnits {
		units[u] = unitFile(s.Name, "/bin/false")
	}
	names := make([]string, 0, len(units))
	for n := range units {
		names = append(names, n)
	}
	sort.Strings(names)
	held := ""
	if s.Held {
		held = "1"
	}
	var attrs, writes strings.Builder
	for i, n := range names {
		fmt.Fprintf(&attrs, "  unit%d = %s;\n", i, nixString(units[n]))
		fmt.Fprintf(&writes, "printf '%%s' \"$unit%d\" > $out/units/%s\n", i, n)
	}
	return fmt.Sprintf(`derivation {
  name = %q;
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  standinName = %q;
  held = %q;
  stc = %s;
%s  args = [ "-c" %s ];
}`, "nixos-system-standin-systemd-"+s.Name, s.Name, held, nixString(switchToConfiguration), attrs.String(),
		nixString(`mkdir -p $out/bin $out/units
printf '%s' "$stc" | sed -e "s|@out@|$out|g" -e "s|@name@|$standinName|g" -e "s|@held@|$held|g" > $out/bin/switch-to-configuration
chmod +x $out/bin/switch-to-configuration
echo 1 > $out/init-interface-version
`+writes.String()))
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nix-build", "--no-out-link", "-E", s.Expression())
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build stand-in system %s: %v\n%s", s.Name, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// Activations are the stand-in systems' records of their runs in the
// container, one "<store path> <action>" line each, oldest first.
func (c *Container) Activations() []string {
	s := strings.TrimSpace(c.readFile("/nix/var/standin/log"))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// ActivationCgroup is the cgroup (the unified hierarchy's line of
// /proc/self/cgroup, "0::/system.slice/...") the named stand-in system's
// last activation ran in, "" if it never ran.
func (c *Container) ActivationCgroup(name string) string {
	for _, l := range strings.Split(c.readFile("/nix/var/standin/cgroup-"+name), "\n") {
		if strings.HasPrefix(l, "0::") {
			return l
		}
	}
	return ""
}

// ActivationStarted reports whether the named stand-in system's
// activation started.
func (c *Container) ActivationStarted(name string) bool {
	return c.readFile("/nix/var/standin/started-"+name) != ""
}

// Release lets the held activations of the named stand-in system go on,
// now and later.
func (c *Container) Release(t testing.TB, name string) {
	t.Helper()
	dir := filepath.Join(c.Root(), "nix", "var", "standin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release-"+name), nil, 0o644); err != nil {
		t.Fatalf("release the activation of %s: %v", name, err)
	}
}

// BootDefault is what the last `switch-to-configuration boot` recorded.
func (c *Container) BootDefault() string {
	return strings.TrimSpace(c.readFile("/nix/var/standin/boot-default"))
}

// readFile reads a file under /nix in the container (its overlay, seen
// from here).
func (c *Container) readFile(p string) string {
	b, _ := os.ReadFile(filepath.Join(c.Root(), p))
	return string(b)
}

// CurrentSystem is where the container's /run/current-system points (""
// when nowhere).
func (c *Container) CurrentSystem(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.Exec(ctx, "readlink /run/current-system || true")
	if err != nil {
		t.Fatalf("read /run/current-system: %v", err)
	}
	return strings.TrimSpace(out)
}
