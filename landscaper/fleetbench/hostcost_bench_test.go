package fleetbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// BenchmarkHostCost tells what the steps of a deployment cost a stand-in
// host in CPU time (BENCHMARKS.md, "Where a 20-host apply spends its
// time"): an SSH login (the provider's Go client against the host's
// sshd), an SSH command on a connection made already (a session: sshd's
// child, root's login shell, sh -c), and, on top of a session, one
// program started (sleep 0) and the Nix programs an activation starts
// (nix-env and nix-daemon, here only --version: what starting them costs).
// Each is measured exactly, with a cgroup v1 cpuacct group holding the
// host's processes, over b.N repetitions, and reported in host-ms per
// repetition. It needs root and cpuacct mounted at /sys/fs/cgroup/cpuacct
// (scripts/bench-fleet.sh --cost runs it).
func BenchmarkHostCost(b *testing.B) {
	const cgroupRoot = "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cpuacct.usage")); err != nil {
		b.Fatalf("cpuacct cgroup not mounted at %s: %v", cgroupRoot, err)
	}
	f := startFleet(b, 1)
	h := f.hosts[0]
	group := filepath.Join(cgroupRoot, fmt.Sprintf("fleetbench-%d-cost", os.Getpid()))
	if err := os.MkdirAll(group, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.Remove(group) })
	moveHost(b, h, group)
	b.Cleanup(func() { moveHost(b, h, cgroupRoot) })

	target := remote.Target{Address: h.Address, Port: h.Port, User: "root", PrivateKey: f.privateKey, HostKey: h.HostPublicKey()}
	ctx := context.Background()
	dial := func(tb testing.TB) *remote.Client {
		c, err := remote.Dial(ctx, target)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	// measure runs step b.N times and reports the host's CPU time per
	// run, once what the host's processes finish after it is in.
	measure := func(b *testing.B, step func()) {
		before := cpuacctUsage(b, group)
		for b.Loop() {
			step()
		}
		time.Sleep(200 * time.Millisecond)
		b.ReportMetric(float64(cpuacctUsage(b, group)-before)/float64(time.Millisecond)/float64(b.N), "host-ms/op")
	}
	b.Run("login", func(b *testing.B) {
		measure(b, func() { dial(b).Close() })
	})
	c := dial(b)
	defer c.Close()
	for _, cmd := range []struct{ name, script string }{
		{"session", ":"},
		{"session+program", "sleep 0"},
		{"session+nix-env", "nix-env --version >/dev/null"},
		{"session+nix-daemon", "nix-daemon --version >/dev/null"},
	} {
		b.Run(cmd.name, func(b *testing.B) {
			measure(b, func() {
				if _, err := c.Run(ctx, cmd.name, cmd.script, nil); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// moveHost puts the host's processes into the cgroup dir.
func moveHost(tb testing.TB, h *testhost.Host, dir string) {
	tb.Helper()
	for _, pid := range h.Processes() {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
	}
}
