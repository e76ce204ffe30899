// Package fleetbench measures `landscaper apply` of nixos.system members on
// a fleet of stand-in hosts (internal/testhost) against the same steps done
// by hand, one host after another: `nix copy`, `ssh ... nix-env --set`,
// `ssh ... switch-to-configuration switch`.
//
// BenchmarkFleetApply is the benchmark (scripts/bench-fleet.sh runs it);
// TestFleetApplyOneHost checks, under plain `go test`, that both ways work
// on one host. Both need root, util-linux, openssh-server and nix.
package fleetbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// fleetSizes are the numbers of hosts the benchmark deploys to:
// BENCH_FLEET_SIZES ("1 10 20" by default).
func fleetSizes(tb testing.TB) []int {
	tb.Helper()
	spec := os.Getenv("BENCH_FLEET_SIZES")
	if spec == "" {
		return []int{1, 10, 20}
	}
	var sizes []int
	for _, f := range strings.Fields(spec) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			tb.Fatalf("BENCH_FLEET_SIZES: %q is not a number of hosts", f)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		tb.Fatal("BENCH_FLEET_SIZES names no size")
	}
	return sizes
}

// stepTimeout bounds one landscaper run or one host's steps by hand.
const stepTimeout = 10 * time.Minute

// fleet is a set of running stand-in hosts with one login key authorised
// on all of them, and what the by-hand steps need to reach them: the key in
// a file and a known-hosts file that pins every host's key.
type fleet struct {
	hosts      []*testhost.Host
	privateKey string // OpenSSH PEM
	keyFile    string
	knownHosts string
	bin        string // the landscaper binary; its providers are beside it
}

func startFleet(tb testing.TB, n int) *fleet {
	tb.Helper()
	login := testhost.NewKeyPair(tb)
	// NIX_SSHOPTS is split on whitespace: a directory of our own, whose
	// name has none (a test's TempDir is named after the test).
	dir, err := os.MkdirTemp("", "fleetbench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	f := &fleet{
		privateKey: login.Private,
		keyFile:    filepath.Join(dir, "id_ed25519"),
		knownHosts: filepath.Join(dir, "known_hosts"),
		bin:        filepath.Join(testbin.Dir(tb), "landscaper"),
	}
	if err := os.WriteFile(f.keyFile, []byte(f.privateKey), 0o600); err != nil {
		tb.Fatal(err)
	}
	var known strings.Builder
	for i := 0; i < n; i++ {
		h := testhost.Start(tb, testhost.Options{AuthorizedKeys: login.Public + "\n"})
		// testhost gives the host's root an empty home, so an SSH
		// command costs what it costs on a server rather than what this
		// machine's /root/.bashrc makes it cost (landscaper runs more SSH
		// commands per host than the by-hand steps).
		f.hosts = append(f.hosts, h)
		fmt.Fprintf(&known, "[%s]:%d %s\n", h.Address, h.Port, h.HostPublicKey())
	}
	if err := os.WriteFile(f.knownHosts, []byte(known.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return f
}

// systemSeq makes every stand-in system of a test process new.
var systemSeq atomic.Int64

// newSystem builds a stand-in system no host has seen yet.
func newSystem(tb testing.TB, label string) string {
	tb.Helper()
	name := fmt.Sprintf("fleet-%s-%d-%d", label, os.Getpid(), systemSeq.Add(1))
	return testhost.BuildSystem(tb, testhost.System{Name: name})
}

// nixString quotes s as a Nix string.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// deployment is a landscaper.nix with one nixos.system member per host, all
// running toplevel, logging in with the fleet's key (a literal: the
// benchmark measures the activation, not key generation).
func (f *fleet) deployment(hosts []*testhost.Host, toplevel string) string {
	var b strings.Builder
	b.WriteString("{ members, providers, ... }:\nlet\n")
	fmt.Fprintf(&b, "  privateKey = %s;\n  toplevel = %s;\nin\n{\n", nixString(f.privateKey), nixString(toplevel))
	for i, h := range hosts {
		fmt.Fprintf(&b, "  members.host%02d = {\n    type = providers.nixos.system;\n", i+1)
		fmt.Fprintf(&b, "    inputs = {\n      address = %s;\n      port = %d;\n      hostPublicKey = %s;\n      inherit privateKey toplevel;\n    };\n  };\n",
			nixString(h.Address), h.Port, nixString(h.HostPublicKey()))
	}
	b.WriteString("}\n")
	return b.String()
}

// env is the environment of every command: landscaper's test environment
// (no LANDSCAPER_* settings, no binary cache: the machine is offline),
// without NIX_SSHOPTS, plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range testbin.Env() {
		if !strings.HasPrefix(kv, "NIX_SSHOPTS=") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// apply writes the deployment into dir and runs `landscaper apply
// --auto-approve --json` there. It returns the run's wall time and fails
// unless every host's member was created or updated.
func (f *fleet) apply(tb testing.TB, dir string, hosts []*testhost.Host, toplevel string) time.Duration {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(f.deployment(hosts, toplevel)), 0o600); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, "apply", "--auto-approve", "--json")
	cmd.Dir = dir
	cmd.Env = env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		tb.Fatalf("landscaper apply on %d hosts: %v\nstdout:\n%s\nstderr:\n%s", len(hosts), err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	var summary struct {
		Kind    string   `json:"kind"`
		Created int      `json:"created"`
		Updated int      `json:"updated"`
		Failed  []string `json:"failed"`
	}
	if err := json.Unmarshal([]byte(last), &summary); err != nil || summary.Kind != "summary" {
		tb.Fatalf("landscaper apply: last line is not the summary (%v): %s", err, last)
	}
	if len(summary.Failed) > 0 || summary.Created+summary.Updated != len(hosts) {
		tb.Fatalf("landscaper apply on %d hosts: %s\nstderr:\n%s", len(hosts), last, stderr.String())
	}
	return elapsed
}

// sshArgs are OpenSSH's options for a host, with its key pinned (strict
// host key checking against the fleet's known-hosts file).
func (f *fleet) sshArgs(h *testhost.Host) []string {
	return []string{
		"-F", "none", "-p", strconv.Itoa(h.Port), "-i", f.keyFile,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + f.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
	}
}

// byHand deploys toplevel to the hosts one after another the way one would
// by hand, and returns the wall time of the whole loop:
//
//	nix copy --no-check-sigs --to ssh-ng://root@ADDR TOPLEVEL   (NIX_SSHOPTS: port, key, pinned host key)
//	ssh root@ADDR nix-env -p /nix/var/nix/profiles/system --set TOPLEVEL
//	ssh root@ADDR TOPLEVEL/bin/switch-to-configuration switch
func (f *fleet) byHand(tb testing.TB, hosts []*testhost.Host, toplevel string) time.Duration {
	tb.Helper()
	run := func(h *testhost.Host, extraEnv []string, name string, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env(extraEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("by hand on %s:%d: %s %s: %v\n%s", h.Address, h.Port, name, strings.Join(args, " "), err, out)
		}
	}
	start := time.Now()
	for _, h := range hosts {
		login := "root@" + h.Address
		run(h, []string{"NIX_SSHOPTS=" + strings.Join(f.sshArgs(h), " ")},
			"nix", "--extra-experimental-features", "nix-command", "copy", "--no-check-sigs", "--to", "ssh-ng://"+login, toplevel)
		run(h, nil, "ssh", append(f.sshArgs(h), login, "nix-env", "-p", "/nix/var/nix/profiles/system", "--set", toplevel)...)
		run(h, nil, "ssh", append(f.sshArgs(h), login, toplevel+"/bin/switch-to-configuration", "switch")...)
	}
	return time.Since(start)
}

// checkRuns fails unless every host runs toplevel, has it as its system
// profile and boots it, and ran toplevel's switch-to-configuration with
// exactly these actions, in this order.
func checkRuns(tb testing.TB, hosts []*testhost.Host, toplevel, how string, actions ...string) {
	tb.Helper()
	var errs []error
	for _, h := range hosts {
		if cur, prof, boot := h.CurrentSystem(), h.ProfileSystem(), h.BootDefault(); cur != toplevel || prof != toplevel || boot != toplevel {
			errs = append(errs, fmt.Errorf("%s: host %s:%d runs %q, profile %q, boot default %q; want %s", how, h.Address, h.Port, cur, prof, boot, toplevel))
			continue
		}
		var got []string
		for _, a := range h.Activations() {
			if p, action, _ := strings.Cut(a, " "); p == toplevel {
				got = append(got, action)
			}
		}
		if !slices.Equal(got, actions) {
			errs = append(errs, fmt.Errorf("%s: host %s:%d ran switch-to-configuration %q of the new system, want %q", how, h.Address, h.Port, got, actions))
		}
	}
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
}

// TestFleetApplyOneHost checks what the benchmark does, on one host: the
// by-hand steps, then `landscaper apply` of a new system over them, then
// by hand again over landscaper's. Correctness only; nothing is timed.
func TestFleetApplyOneHost(t *testing.T) {
	f := startFleet(t, 1)
	hosts := f.hosts
	dir := t.TempDir()

	v1 := newSystem(t, "test-hand")
	f.byHand(t, hosts, v1)
	checkRuns(t, hosts, v1, "by hand", "switch")

	v2 := newSystem(t, "test-landscaper")
	f.apply(t, dir, hosts, v2)
	// landscaper activates with test (under the dead-man switch), then
	// makes the boot entry.
	checkRuns(t, hosts, v2, "landscaper apply", "test", "boot")

	v3 := newSystem(t, "test-hand")
	f.byHand(t, hosts, v3)
	checkRuns(t, hosts, v3, "by hand", "switch")

	// And landscaper again over a host whose system changed behind its
	// back: an update, not a no-op.
	v4 := newSystem(t, "test-landscaper")
	f.apply(t, dir, hosts, v4)
	checkRuns(t, hosts, v4, "landscaper apply", "test", "boot")
}

// fleetResult is one fleet size's runs, in seconds.
type fleetResult struct {
	landscaper, byHand []float64
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secondsList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, ", ")
}

// BenchmarkFleetApply deploys a new system to 1, 10 and 20 stand-in hosts
// (BENCH_FLEET_SIZES) with `landscaper apply` (the timed part: ns/op is its
// mean) and by hand, one host after another, and reports the medians
// (landscaper-s, byhand-s) and their ratio by-hand/landscaper, then prints
// them as a table with every run. Each iteration builds two systems no host
// has seen (one for each way, before anything is timed), so every host
// really copies and activates. Run it with -benchtime=Kx for K iterations
// per size (scripts/bench-fleet.sh).
//
// The hosts (as many as the largest size) are started once. A size's first
// landscaper apply (untimed) records its members, so the timed applies are
// updates of hosts that already run a system, as in a fleet update.
func BenchmarkFleetApply(b *testing.B) {
	sizes := fleetSizes(b)
	f := startFleet(b, slices.Max(sizes))
	results := map[int]*fleetResult{}
	for _, n := range sizes {
		hosts := f.hosts[:n]
		dir := b.TempDir()
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			f.apply(b, dir, hosts, newSystem(b, fmt.Sprintf("warmup%d", n)))
			r := &fleetResult{}
			results[n] = r
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				viaLandscaper := newSystem(b, fmt.Sprintf("landscaper%d", n))
				viaHand := newSystem(b, fmt.Sprintf("hand%d", n))
				// Every other iteration goes by hand first, so that
				// neither way always follows the other.
				handFirst := i%2 == 1
				var h time.Duration
				if handFirst {
					h = f.byHand(b, hosts, viaHand)
					checkRuns(b, hosts, viaHand, "by hand", "switch")
				}
				b.StartTimer()
				d := f.apply(b, dir, hosts, viaLandscaper)
				b.StopTimer()
				checkRuns(b, hosts, viaLandscaper, "landscaper apply", "test", "boot")
				if !handFirst {
					h = f.byHand(b, hosts, viaHand)
					checkRuns(b, hosts, viaHand, "by hand", "switch")
				}
				r.landscaper = append(r.landscaper, d.Seconds())
				r.byHand = append(r.byHand, h.Seconds())
				b.StartTimer()
			}
			ml, mh := median(r.landscaper), median(r.byHand)
			b.ReportMetric(ml, "landscaper-s")
			b.ReportMetric(mh, "byhand-s")
			b.ReportMetric(mh/ml, "byhand/landscaper")
		})
	}
	// The table, from the medians of each size's runs.
	var out strings.Builder
	fmt.Fprintf(&out, "\n| hosts | landscaper apply s | by hand s | by hand / landscaper | runs: landscaper (s) | runs: by hand (s) |\n|---:|---:|---:|---:|---|---|\n")
	for _, n := range sizes {
		r := results[n]
		if r == nil || len(r.landscaper) == 0 {
			continue
		}
		ml, mh := median(r.landscaper), median(r.byHand)
		fmt.Fprintf(&out, "| %d | %.2f | %.2f | %.2f | %s | %s |\n", n, ml, mh, mh/ml, secondsList(r.landscaper), secondsList(r.byHand))
	}
	fmt.Print(out.String())
}
