package nixos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// closure is a system's closure: every store path in it with its NAR
// size, and what decides a reboot and unit restarts.
type closure struct {
	Top   string
	Paths map[string]int64
	// Boot holds the resolved kernel, initrd and kernel-modules.
	Boot map[string]string
	// Units maps a systemd unit's name to the store file it resolves to.
	Units map[string]string
}

// size is the closure's total NAR size.
func (c closure) size() int64 {
	var n int64
	for _, s := range c.Paths {
		n += s
	}
	return n
}

// packages groups a closure's store paths by package name, with the
// versions of each: only paths whose name carries a version count, and
// the system itself does not.
func (c closure) packages() map[string][]string {
	out := map[string][]string{}
	for p := range c.Paths {
		if p == c.Top {
			continue
		}
		name, version := packageOf(p)
		if version == "" {
			continue
		}
		if !contains(out[name], version) {
			out[name] = append(out[name], version)
		}
	}
	for _, vs := range out {
		sort.Strings(vs)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// outputSuffixes are the names of a derivation's extra outputs, which
// Nix appends to its store paths' names ("openssl-3.0.13-bin"): the
// package and version are what precedes them.
var outputSuffixes = []string{"bin", "dev", "out", "lib", "man", "doc", "info", "debug", "static", "devdoc", "getent", "modules"}

// packageOf splits a store path's name into package name and version as
// builtins.parseDrvName does (the version starts at the first "-" not
// followed by a letter), without an extra output's suffix.
func packageOf(storePath string) (name, version string) {
	base := filepath.Base(storePath)
	if len(base) > 33 && base[32] == '-' {
		base = base[33:]
	}
	for i := 0; i+1 < len(base); i++ {
		if base[i] == '-' && !isLetter(base[i+1]) {
			name, version = base[:i], base[i+1:]
			break
		}
	}
	if version == "" {
		return base, ""
	}
	for _, s := range outputSuffixes {
		if v, ok := strings.CutSuffix(version, "-"+s); ok && v != "" {
			return name, v
		}
	}
	return name, version
}

func isLetter(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }

// packageChange is a package whose versions differ between two systems.
type packageChange struct {
	Name   string   `json:"name"`
	Before []string `json:"before"`
	After  []string `json:"after"`
}

// packageVersions is a package added or removed, with its versions.
type packageVersions struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
}

// systemDiff is what an update changes on a host, as the plan shows it.
type systemDiff struct {
	Host string `json:"host"`
	// From is the system the host runs ("" for none), To the new one.
	From string `json:"from"`
	To   string `json:"to"`
	// Built says whether To exists in the deployer's store; when it
	// does not, nothing below is known and Derivation names what will
	// be built.
	Built      bool   `json:"built"`
	Derivation string `json:"derivation,omitempty"`
	// Unread says why the host's side could not be read, when it could
	// not: the diff then shows the new system alone.
	Unread string `json:"unread,omitempty"`

	Added   []packageVersions `json:"added,omitempty"`
	Removed []packageVersions `json:"removed,omitempty"`
	Changed []packageChange   `json:"changed,omitempty"`
	// ClosureBytes is the new closure's size, ClosureDelta its
	// difference from the running one's.
	ClosureBytes int64 `json:"closureBytes"`
	ClosureDelta int64 `json:"closureDelta"`
	// CopyPaths and CopyBytes are what the host does not hold yet.
	CopyPaths int   `json:"copyPaths"`
	CopyBytes int64 `json:"copyBytes"`
	// RebootFor names what changes among kernel, initrd and
	// kernel-modules: a reboot is needed to run them.
	RebootFor []string `json:"rebootFor,omitempty"`
	// Units are the systemd units whose definition changes, added or
	// goes: switch-to-configuration restarts, reloads, starts or stops
	// those that are active.
	UnitsChanged []string `json:"unitsChanged,omitempty"`
	UnitsAdded   []string `json:"unitsAdded,omitempty"`
	UnitsRemoved []string `json:"unitsRemoved,omitempty"`
}

// diffClosures compares the running system's closure with the new one;
// missing holds the new paths the host lacks.
func diffClosures(host string, from, to closure, missing map[string]bool) systemDiff {
	d := systemDiff{Host: host, From: from.Top, To: to.Top, Built: true, ClosureBytes: to.size(), ClosureDelta: to.size() - from.size()}
	before, after := from.packages(), to.packages()
	for _, name := range sortedKeys(after) {
		old, ok := before[name]
		switch {
		case !ok:
			d.Added = append(d.Added, packageVersions{Name: name, Versions: after[name]})
		case strings.Join(old, " ") != strings.Join(after[name], " "):
			d.Changed = append(d.Changed, packageChange{Name: name, Before: old, After: after[name]})
		}
	}
	for _, name := range sortedKeys(before) {
		if _, ok := after[name]; !ok {
			d.Removed = append(d.Removed, packageVersions{Name: name, Versions: before[name]})
		}
	}
	for _, p := range sortedKeys(to.Paths) {
		if missing[p] {
			d.CopyPaths++
			d.CopyBytes += to.Paths[p]
		}
	}
	for _, f := range []string{"kernel", "initrd", "kernel-modules"} {
		if from.Top != "" && from.Boot[f] != to.Boot[f] {
			d.RebootFor = append(d.RebootFor, f)
		}
	}
	for _, u := range sortedKeys(to.Units) {
		old, ok := from.Units[u]
		switch {
		case !ok && from.Top != "":
			d.UnitsAdded = append(d.UnitsAdded, u)
		case ok && old != to.Units[u]:
			d.UnitsChanged = append(d.UnitsChanged, u)
		}
	}
	for _, u := range sortedKeys(from.Units) {
		if _, ok := to.Units[u]; !ok {
			d.UnitsRemoved = append(d.UnitsRemoved, u)
		}
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// summary is the diff in one line, for a plan of many hosts.
func (d systemDiff) summary() string {
	if !d.Built {
		return fmt.Sprintf("system %s is not built yet: what changes on the host is known once it is (landscaper plan --build)", d.Derivation)
	}
	parts := []string{fmt.Sprintf("packages: %d added, %d removed, %d changed", len(d.Added), len(d.Removed), len(d.Changed))}
	if d.From != "" {
		parts = append(parts, fmt.Sprintf("closure %s (%s)", bytesText(d.ClosureBytes), signedBytes(d.ClosureDelta)))
	} else {
		parts = append(parts, "closure "+bytesText(d.ClosureBytes))
	}
	if d.Unread == "" {
		parts = append(parts, fmt.Sprintf("to copy: %d paths, %s", d.CopyPaths, bytesText(d.CopyBytes)))
	}
	if len(d.RebootFor) > 0 {
		parts = append(parts, "reboot needed: "+strings.Join(d.RebootFor, ", ")+" change")
	}
	if n := len(d.UnitsChanged) + len(d.UnitsAdded) + len(d.UnitsRemoved); n > 0 {
		parts = append(parts, fmt.Sprintf("%d units change", n))
	}
	line := strings.Join(parts, "; ")
	if d.Unread != "" {
		line += " (compared with nothing: " + d.Unread + ")"
	}
	return line
}

// lines are the diff's details, one change per line, nvd style.
func (d systemDiff) lines() []string {
	if !d.Built {
		return nil
	}
	var out []string
	for _, c := range d.Changed {
		out = append(out, fmt.Sprintf("[C] %s: %s -> %s", c.Name, strings.Join(c.Before, ", "), strings.Join(c.After, ", ")))
	}
	for _, a := range d.Added {
		out = append(out, fmt.Sprintf("[A] %s: %s", a.Name, strings.Join(a.Versions, ", ")))
	}
	for _, r := range d.Removed {
		out = append(out, fmt.Sprintf("[R] %s: %s", r.Name, strings.Join(r.Versions, ", ")))
	}
	if len(d.RebootFor) > 0 {
		out = append(out, "reboot needed: "+strings.Join(d.RebootFor, ", ")+" differ from the running system's")
	}
	for _, u := range []struct {
		what  string
		units []string
	}{{"units changed (restarted or reloaded if active)", d.UnitsChanged}, {"units added", d.UnitsAdded}, {"units removed (stopped if active)", d.UnitsRemoved}} {
		if len(u.units) > 0 {
			out = append(out, u.what+": "+strings.Join(u.units, ", "))
		}
	}
	out = append(out, "from "+orNone(d.From), "to   "+d.To)
	return out
}

// bytesText writes a size in binary units.
func bytesText(n int64) string {
	const unit = 1024
	if n < 0 {
		n = -n
	}
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func signedBytes(n int64) string {
	if n < 0 {
		return "-" + bytesText(n)
	}
	return "+" + bytesText(n)
}

// parseClosureListing reads the key=value lines closureScript prints:
// the closure, and the paths the machine lacks.
func parseClosureListing(out string) (closure, map[string]bool) {
	c := closure{Paths: map[string]int64{}, Boot: map[string]string{}, Units: map[string]string{}}
	missing := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "top":
			c.Top = v
		case "path":
			size, p, _ := strings.Cut(v, " ")
			if n, err := strconv.ParseInt(size, 10, 64); err == nil && isStorePath(p) {
				c.Paths[p] = n
			}
		case "kernel", "initrd", "kernel-modules":
			c.Boot[k] = v
		case "unit":
			name, target, _ := strings.Cut(v, " ")
			c.Units[name] = target
		case "missing":
			missing[v] = true
		}
	}
	return c, missing
}

// closureScript lists the closure of the system $1 (the host's current
// one when $1 is empty) on the machine it runs on and, with $2 = check,
// which of the store paths on stdin that machine lacks, as lines of
//
//	top=PATH; path=SIZE PATH; kernel|initrd|kernel-modules=PATH;
//	unit=NAME FILE; missing=PATH
const closureScript = `top="$1"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
[ -n "$top" ] || top=$(readlink -f /run/current-system 2>/dev/null || true)
if [ -n "$top" ] && nix-store --check-validity "$top" 2>/dev/null; then
	echo "top=$top"
	nix-store --query --requisites "$top" >"$tmp/paths" || exit 1
	xargs nix-store --query --size <"$tmp/paths" >"$tmp/sizes" || exit 1
	paste -d ' ' "$tmp/sizes" "$tmp/paths" | sed 's/^/path=/'
	for f in kernel initrd kernel-modules; do
		if [ -e "$top/$f" ]; then echo "$f=$(readlink -f "$top/$f")"; fi
	done
	for u in "$top"/etc/systemd/system/*; do
		if [ -e "$u" ]; then echo "unit=$(basename "$u") $(readlink -f "$u")"; fi
	done
fi
if [ "$2" = check ]; then
	xargs -r nix-store --check-validity --print-invalid | sed 's/^/missing=/'
fi
exit 0
`

// storeNameOf is a store path's name without its hash.
func storeNameOf(p string) string {
	base := filepath.Base(p)
	if len(base) > 33 && base[32] == '-' {
		return base[33:]
	}
	return base
}

// diffTimeout bounds what reading the host for a plan's diff may take.
const diffTimeout = 20 * time.Second

// systemDetails tells, for a plan, what installing toplevel changes on
// the host: read from the deployer's store (the new system) and from the
// host (what it runs, which paths it holds) when the host can be reached.
// It never fails the plan: what cannot be read is said in the details.
func systemDetails(ctx context.Context, in systemInputs, reachable bool, pool *connPool) *resource.ChangeDetails {
	d := closureDiff(ctx, in, reachable, pool)
	b, err := json.Marshal(d)
	if err != nil {
		b = nil
	}
	return &resource.ChangeDetails{Summary: d.summary(), Lines: d.lines(), JSON: b}
}

// installDetails tells what an installation puts on empty disks: the
// system's packages and closure, all of it copied.
func installDetails(ctx context.Context, address, toplevel string) *resource.ChangeDetails {
	ctx, cancel := context.WithTimeout(ctx, diffTimeout)
	defer cancel()
	d := systemDiff{Host: address, To: toplevel, Derivation: storeNameOf(toplevel)}
	if to, err := localClosure(ctx, toplevel); err == nil && to.Top != "" {
		missing := map[string]bool{}
		for p := range to.Paths {
			missing[p] = true
		}
		d = diffClosures(address, closure{}, to, missing)
		d.Unread = "a new installation on empty disks"
	}
	b, _ := json.Marshal(d)
	return &resource.ChangeDetails{Summary: d.summary(), Lines: d.lines(), JSON: b}
}

func closureDiff(ctx context.Context, in systemInputs, reachable bool, pool *connPool) systemDiff {
	ctx, cancel := context.WithTimeout(ctx, diffTimeout)
	defer cancel()
	to, err := localClosure(ctx, in.Toplevel)
	if err != nil || to.Top == "" {
		return systemDiff{Host: in.Address, To: in.Toplevel, Derivation: storeNameOf(in.Toplevel)}
	}
	missing := map[string]bool{}
	for p := range to.Paths {
		missing[p] = true
	}
	if !reachable {
		d := diffClosures(in.Address, closure{}, to, missing)
		d.Unread = "the host's connection is known only after apply"
		return d
	}
	from, lacks, err := hostClosure(ctx, in, to, pool)
	if err != nil {
		d := diffClosures(in.Address, closure{}, to, missing)
		d.Unread = "could not read the host: " + err.Error()
		return d
	}
	return diffClosures(in.Address, from, to, lacks)
}

// localClosure lists a system's closure in the deployer's store; Top is
// "" when the system is not there (not built).
func localClosure(ctx context.Context, toplevel string) (closure, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", closureScript, "sh", toplevel, "")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return closure{}, fmt.Errorf("list the closure of %s: %w: %s", toplevel, err, strings.TrimSpace(stderr.String()))
	}
	c, _ := parseClosureListing(string(out))
	return c, nil
}

// hostClosure lists the closure of what the host runs and which of the
// new closure's paths it lacks, over one SSH session (of the refresh's
// connection when pool holds it).
func hostClosure(ctx context.Context, in systemInputs, to closure, pool *connPool) (closure, map[string]bool, error) {
	c := pool.take(in.target())
	if c == nil {
		var err error
		if c, err = dialWithin(ctx, in.target(), diffTimeout); err != nil {
			return closure{}, nil, err
		}
	}
	res, err := c.Run(ctx, "list the running system's closure", "set -- '' check\n"+closureScript, strings.NewReader(strings.Join(sortedKeys(to.Paths), "\n")+"\n"))
	if err != nil {
		c.Close()
		return closure{}, nil, err
	}
	pool.put(c)
	from, missing := parseClosureListing(res.Stdout)
	return from, missing, nil
}
