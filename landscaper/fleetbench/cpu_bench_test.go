package fleetbench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// BenchmarkFleetApplyCPU tells where the CPU time of a fleet apply goes
// (BENCHMARKS.md, "Where a fleet apply spends its time"). It applies a new
// system to BENCH_FLEET_SIZES' largest fleet once per iteration and
// measures:
//
//   - exactly, with cgroup v1 cpuacct groups: the CPU time of the deployer
//     (landscaper, its providers, and the ssh and nix processes they
//     start) and of the hosts (every sshd connection and what runs in
//     it: shells, nix-daemon, switch-to-configuration, the supervisor);
//   - per command, with BSD process accounting (accton): how many
//     processes of each name ran and their CPU time, which the kernel
//     records in 10 ms ticks, truncated (short processes count as 0:
//     the counts are exact, the per-command times are a lower bound).
//
// It needs root, cpuacct mounted at /sys/fs/cgroup/cpuacct and accton
// (Debian's acct package); scripts/bench-fleet.sh --cpu runs it.
func BenchmarkFleetApplyCPU(b *testing.B) {
	const cgroupRoot = "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cpuacct.usage")); err != nil {
		b.Fatalf("cpuacct cgroup not mounted at %s: %v", cgroupRoot, err)
	}
	if _, err := exec.LookPath("accton"); err != nil {
		b.Fatalf("accton not found (apt-get install acct): %v", err)
	}
	// Orphans (the activation's supervisor, sshd's daemon) become this
	// process's children, so process accounting ties them to the run.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		b.Fatalf("become a subreaper: %v", err)
	}
	sizes := fleetSizes(b)
	n := sizes[len(sizes)-1]
	groups := map[string]string{}
	for _, g := range []string{"deployer", "hosts"} {
		dir := filepath.Join(cgroupRoot, fmt.Sprintf("fleetbench-%d-%s", os.Getpid(), g))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		groups[g] = dir
		b.Cleanup(func() { _ = os.Remove(dir) })
	}
	f := startFleet(b, n)
	for _, h := range f.hosts {
		for _, pid := range h.Processes() {
			_ = os.WriteFile(filepath.Join(groups["hosts"], "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
		}
	}
	b.Cleanup(func() {
		// Back to the root group, so the groups can be removed.
		for _, h := range f.hosts {
			for _, pid := range h.Processes() {
				_ = os.WriteFile(filepath.Join(cgroupRoot, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
			}
		}
	})
	dir := b.TempDir()
	f.applyIn(b, dir, f.hosts, newSystem(b, "cpu-warmup"), "")
	var runs []cpuRun
	for b.Loop() {
		b.StopTimer()
		sys := newSystem(b, "cpu")
		acct := filepath.Join(b.TempDir(), "pacct")
		if err := os.WriteFile(acct, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		before := map[string]time.Duration{}
		for g, d := range groups {
			before[g] = cpuacctUsage(b, d)
		}
		if out, err := exec.Command("accton", acct).CombinedOutput(); err != nil {
			b.Fatalf("accton %s: %v\n%s", acct, err, out)
		}
		b.StartTimer()
		wall := f.applyIn(b, dir, f.hosts, sys, groups["deployer"])
		b.StopTimer()
		if out, err := exec.Command("accton", "off").CombinedOutput(); err != nil {
			b.Fatalf("accton off: %v\n%s", err, out)
		}
		checkRuns(b, f.hosts, sys, "landscaper apply", "test", "boot")
		r := cpuRun{wall: wall, group: map[string]time.Duration{}}
		for g, d := range groups {
			r.group[g] = cpuacctUsage(b, d) - before[g]
		}
		roots := map[uint32]bool{uint32(os.Getpid()): true}
		for _, h := range f.hosts {
			for _, pid := range h.Processes() {
				roots[uint32(pid)] = true
			}
		}
		r.commands = accountedCommands(b, acct, roots)
		runs = append(runs, r)
		b.StartTimer()
	}
	fmt.Print(cpuReport(n, runs))
}

// cpuRun is one measured apply.
type cpuRun struct {
	wall     time.Duration
	group    map[string]time.Duration
	commands map[string]commandCPU
}

// commandCPU is what process accounting recorded of one command name.
type commandCPU struct {
	count int
	cpu   time.Duration
}

func cpuacctUsage(tb testing.TB, dir string) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		tb.Fatal(err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ns)
}

// acctV3Size is the size of Linux's struct acct_v3.
const acctV3Size = 64

// accountedCommands sums a process accounting file (acct_v3 records) by
// command name, over the processes descended from roots (this test and
// the hosts' processes): other work on the machine is in the file too.
func accountedCommands(tb testing.TB, file string, roots map[uint32]bool) map[string]commandCPU {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	type record struct {
		pid, ppid uint32
		comm      string
		cpu       time.Duration
	}
	var recs []record
	for off := 0; off+acctV3Size <= len(data); off += acctV3Size {
		rec := data[off : off+acctV3Size]
		if rec[1]&0x0f != 3 {
			continue
		}
		utime := compT(binary.LittleEndian.Uint16(rec[32:34]))
		stime := compT(binary.LittleEndian.Uint16(rec[34:36]))
		recs = append(recs, record{
			pid:  binary.LittleEndian.Uint32(rec[16:20]),
			ppid: binary.LittleEndian.Uint32(rec[20:24]),
			comm: string(bytes.TrimRight(rec[48:64], "\x00")),
			cpu:  time.Duration((utime + stime) * float64(time.Second) / 100),
		})
	}
	// A child's record comes before its parent's: repeat until no record
	// joins.
	in := map[uint32]bool{}
	for changed := true; changed; {
		changed = false
		for _, r := range recs {
			if !in[r.pid] && (roots[r.ppid] || in[r.ppid]) {
				in[r.pid] = true
				changed = true
			}
		}
	}
	out := map[string]commandCPU{}
	for _, r := range recs {
		if !in[r.pid] {
			continue
		}
		c := out[r.comm]
		c.count++
		c.cpu += r.cpu
		out[r.comm] = c
	}
	return out
}

// compT decodes the kernel's comp_t: 13 bits of mantissa, 3 bits of
// base-8 exponent.
func compT(v uint16) float64 {
	return float64(v&0x1fff) * math.Pow(8, float64(v>>13))
}

// cpuReport is the Markdown of the runs: the medians per group and per
// command.
func cpuReport(hosts int, runs []cpuRun) string {
	if len(runs) == 0 {
		return ""
	}
	med := func(get func(cpuRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = get(r)
		}
		return median(xs)
	}
	var b strings.Builder
	wall := med(func(r cpuRun) float64 { return r.wall.Seconds() })
	dep := med(func(r cpuRun) float64 { return r.group["deployer"].Seconds() })
	host := med(func(r cpuRun) float64 { return r.group["hosts"].Seconds() })
	fmt.Fprintf(&b, "\n%d hosts, median of %d applies: wall %.2f s; CPU %.2f s (deployer %.2f s, hosts %.2f s; %.0f ms per host)\n\n", hosts, len(runs), wall, dep+host, dep, host, (dep+host)*1000/float64(hosts))
	names := map[string]bool{}
	for _, r := range runs {
		for c := range r.commands {
			names[c] = true
		}
	}
	type row struct {
		name       string
		count, cpu float64
	}
	var rows []row
	for c := range names {
		rows = append(rows, row{c,
			med(func(r cpuRun) float64 { return float64(r.commands[c].count) }),
			med(func(r cpuRun) float64 { return r.commands[c].cpu.Seconds() })})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].cpu != rows[j].cpu {
			return rows[i].cpu > rows[j].cpu
		}
		return rows[i].count > rows[j].count
	})
	fmt.Fprintf(&b, "| command | processes | per host | CPU s (10 ms ticks, truncated) |\n|---|---:|---:|---:|\n")
	for _, r := range rows {
		if r.count < float64(hosts)/2 && r.cpu < 0.05 {
			continue // negligible
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.2f |\n", r.name, r.count, r.count/float64(hosts), r.cpu)
	}
	return b.String()
}

// applyIn is apply, with the landscaper process (and so everything it
// starts) in the cgroup dir when dir is not "".
func (f *fleet) applyIn(tb testing.TB, dir string, hosts []*testhost.Host, toplevel, cgroup string) time.Duration {
	tb.Helper()
	if cgroup == "" {
		return f.apply(tb, dir, hosts, toplevel)
	}
	// The run's own shell joins the group, then becomes landscaper.
	wrapper := filepath.Join(tb.TempDir(), "landscaper")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s/cgroup.procs\nexec %s \"$@\"\n", cgroup, f.bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		tb.Fatal(err)
	}
	bin := f.bin
	f.bin = wrapper
	defer func() { f.bin = bin }()
	return f.apply(tb, dir, hosts, toplevel)
}
