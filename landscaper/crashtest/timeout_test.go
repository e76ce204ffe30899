package crashtest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
)

// The tests here check that landscaper never waits forever on a provider:
// operations that hang (honouring cancellation or not) end at the
// operation timeout, plan and read calls that never answer and providers
// that never finish starting end at the call timeout, providers that die
// are reported with their last words, and Ctrl-C stops all of it.

// hangGuard bounds a run that should end by itself; it is a guard
// against hangs, not a timing assertion.
const hangGuard = 2 * time.Minute

// noSchemaCache makes landscaper start every provider at the beginning of
// a run, so a provider that misbehaves while starting does so at once.
const noSchemaCache = "LANDSCAPER_SCHEMA_CACHE=off"

// missing returns the strings of want that s lacks.
func missing(s string, want ...string) []string {
	var out []string
	for _, w := range want {
		if !strings.Contains(s, w) {
			out = append(out, w)
		}
	}
	return out
}

// TestOperationTimeout: a create that does not finish within
// --operation-timeout is cancelled and fails its member, whether the
// provider honours the cancellation or not; the members that do not need
// it are applied and recorded, its dependent is skipped, the state keeps
// the operation as pending, no plugin is left, and the next apply, with
// the member behaving, converges.
func TestOperationTimeout(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	for _, behaviour := range []string{testprovider.BehaviourHang, testprovider.BehaviourStuck} {
		t.Run(behaviour, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			members := []member{
				item("slowpoke", "out/slowpoke", behaviour),
				item("okA", "out/okA", testprovider.BehaviourOK),
				file("fileA", "out/fileA", "a\n"),
				{"afterSlow", `{ type = providers.local.file; inputs = { name = "out/afterSlow"; contents = "after ${members.slowpoke.outputs.id}\n"; }; }`},
			}
			deployment(t, dir, "", members...)

			run := start(t, bin, dir, "apply", "--auto-approve", "--json", "--operation-timeout", "3s")
			failed := run.waitFor("slowpoke to fail", hangGuard, func(ev event) bool { return ev.Kind == "failed" && ev.Member == "slowpoke" })
			res := run.wait(hangGuard)
			if res.code == 0 || res.code == 130 {
				t.Errorf("apply with an operation that times out: want exit 1, got %s", res)
			}
			if m := missing(failed.Message, "testkit", "create did not finish within 3s", "operation timeout"); len(m) > 0 {
				t.Errorf("the failure of slowpoke does not say %q: %s", m, failed.Message)
			}
			if m := missing(res.stderr, "member slowpoke", "did not finish within 3s"); len(m) > 0 {
				t.Errorf("apply's error does not say %q:\n%s", m, res)
			}
			if !membersWith(run.seen(), "skipped")["afterSlow"] {
				t.Errorf("afterSlow, which needs slowpoke, was not skipped:\n%s", run.transcript())
			}
			noStrayPlugins(t, bin, "after the apply")

			st := mustReadState(t, dir)
			for _, m := range []string{"okA", "fileA"} {
				if _, ok := st.Resources[m]; !ok {
					t.Errorf("state has no record of %s", m)
				}
			}
			if _, ok := st.Pending["slowpoke"]; !ok {
				t.Errorf("state has no pending record of slowpoke, whose create timed out (its fate is unknown); pending: %v", keys(st.Pending))
			}
			for _, m := range []string{"slowpoke", "afterSlow"} {
				if _, ok := st.Resources[m]; ok {
					t.Errorf("state records %s as made", m)
				}
			}
			mustNotExist(t, dir, "out/slowpoke", "out/afterSlow")

			members[0] = item("slowpoke", "out/slowpoke", testprovider.BehaviourOK)
			deployment(t, dir, "", members...)
			mustSucceed(t, bin, dir, "apply", "--auto-approve")
			mustExist(t, dir, "out/slowpoke", "out/afterSlow")
			planClean(t, bin, dir)
			if st := mustReadState(t, dir); len(st.Resources) != len(members) || len(st.Pending) != 0 {
				t.Errorf("state records %v with %v pending; want the %d members and nothing pending", keys(st.Resources), keys(st.Pending), len(members))
			}
			noStrayPlugins(t, bin, "after converging")
		})
	}
}

// TestProviderNeverAnswers: a provider that never answers a plan or a
// read, never finishes starting, or dies while starting or planning makes
// `landscaper plan` fail, within the call timeout, with an error that
// names the provider (and the member), says what happened and, for a
// provider that died, shows its last stderr lines; no plugin is left.
func TestProviderNeverAnswers(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	tests := []struct {
		name string
		// behaviour is the item's; setup applies it once first when true
		// (the create of every behaviour used here succeeds).
		behaviour string
		setup     bool
		env       []string
		want      []string
	}{
		{
			name: "plan never answers", behaviour: testprovider.BehaviourHangPlan,
			want: []string{"member slowpoke", "provider testkit: plan did not finish within 3s (the call timeout)"},
		},
		{
			name: "read never answers", behaviour: testprovider.BehaviourHangRead, setup: true,
			want: []string{"slowpoke", "provider testkit: read did not finish within 3s (the call timeout)"},
		},
		{
			name: "provider never finishes starting", behaviour: testprovider.BehaviourOK,
			env:  []string{testprovider.StartEnv + "=" + testprovider.StartHang, noSchemaCache},
			want: []string{"provider testkit", "timeout while waiting for plugin to start"},
		},
		{
			name: "provider never answers for its schema", behaviour: testprovider.BehaviourOK,
			env:  []string{testprovider.StartEnv + "=" + testprovider.StartHangSchema, noSchemaCache},
			want: []string{"provider testkit: get schema did not finish within 3s (the call timeout)"},
		},
		{
			name: "provider dies while starting", behaviour: testprovider.BehaviourOK,
			env:  []string{testprovider.StartEnv + "=" + testprovider.StartExit, noSchemaCache},
			want: append([]string{"provider testkit", "exited before the plugin handshake", "last lines of its stderr"}, testprovider.DyingWords...),
		},
		{
			name: "provider dies while planning", behaviour: testprovider.BehaviourExitPlan,
			want: append([]string{"member slowpoke", "landscaper-provider-testkit exited unexpectedly", "last lines of its stderr"}, testprovider.DyingWords...),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			deployment(t, dir, "", item("slowpoke", "out/slowpoke", tc.behaviour), file("fileA", "out/fileA", "a\n"))
			if tc.setup {
				mustSucceed(t, bin, dir, "apply", "--auto-approve")
			}
			res := landscaperWithEnv(t, bin, dir, tc.env, "plan", "--call-timeout", "3s")
			if res.code != 1 {
				t.Errorf("plan: want exit 1, got %s", res)
			}
			if m := missing(res.stderr, tc.want...); len(m) > 0 {
				t.Errorf("plan's error does not say %q:\n%s", m, res)
			}
			noStrayPlugins(t, bin, "after the plan")
		})
	}
}

// TestInterruptWhileProviderHangs: Ctrl-C stops landscaper within seconds
// when a provider ignores the cancellation of its create, never answers a
// plan, or never finishes starting; the apply saves what it knows, and no
// plugin is left.
func TestInterruptWhileProviderHangs(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	tests := []struct {
		name string
		// begin starts the run and returns once the provider hangs.
		begin func(t *testing.T, dir string) *running
		// check checks the state afterwards.
		check func(t *testing.T, dir string)
	}{
		{
			name: "create ignores cancellation",
			begin: func(t *testing.T, dir string) *running {
				deployment(t, dir, "", hangDeployment(testprovider.BehaviourStuck)...)
				return startHanging(t, bin, dir)
			},
			check: func(t *testing.T, dir string) {
				checkInterrupted(t, bin, dir, true)
				converge(t, bin, dir, "")
			},
		},
		{
			name: "plan never answers",
			begin: func(t *testing.T, dir string) *running {
				deployment(t, dir, "", item("slowpoke", "out/slowpoke", testprovider.BehaviourHangPlan), file("fileA", "out/fileA", "a\n"))
				run := start(t, bin, dir, "apply", "--auto-approve", "--json")
				waitUntil(t, run, "the plan of slowpoke to hang", func() bool {
					_, err := os.Stat(filepath.Join(dir, testprovider.Marker("out/slowpoke", "planning")))
					return err == nil
				})
				return run
			},
			check: func(t *testing.T, dir string) {
				if st, ok := readState(t, dir); ok && (len(st.Resources) != 0 || len(st.Pending) != 0) {
					t.Errorf("an apply interrupted while planning recorded %v with %v pending", keys(st.Resources), keys(st.Pending))
				}
				mustNotExist(t, dir, "out/slowpoke", "out/fileA")
			},
		},
		{
			name: "provider never finishes starting",
			begin: func(t *testing.T, dir string) *running {
				deployment(t, dir, "", item("slowpoke", "out/slowpoke", testprovider.BehaviourOK))
				run := startWithEnv(t, bin, dir, []string{testprovider.StartEnv + "=" + testprovider.StartHang, noSchemaCache}, "plan")
				waitUntil(t, run, "testkit to be started", func() bool {
					for _, p := range pluginsOf(bin, run.pid()) {
						if filepath.Base(p.exe) == "landscaper-provider-testkit" {
							return true
						}
					}
					return false
				})
				return run
			},
			check: func(t *testing.T, dir string) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			run := tc.begin(t, dir)
			run.signal(syscall.SIGINT)
			res := run.wait(exitWithin)
			if res.code == 0 {
				t.Errorf("interrupted run: want a non-zero exit, got %s", res)
			}
			t.Logf("interrupted run exited %d", res.code)
			noStrayPlugins(t, bin, "after the interrupt")
			tc.check(t, dir)
		})
	}
}

// waitUntil polls cond while run runs; it fails the test if the run ends
// or hangGuard passes first.
func waitUntil(t *testing.T, run *running, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if run.exited() {
			t.Fatalf("landscaper ended before %s:\n%s", what, run.res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s:\n%s", what, hangGuard, run.transcript())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
