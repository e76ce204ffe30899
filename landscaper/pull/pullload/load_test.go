package pullload

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// landscaperBin builds the landscaper binary once per test process,
// without the race detector even under -race: the run measures the
// server's memory and goroutines, which the detector would change.
func landscaperBin(tb testing.TB) string {
	tb.Helper()
	root := testbin.Root(tb)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "pullload-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "landscaper")
		cmd := exec.Command("go", "build", "-o", binPath, "./landscaper/cmd/landscaper")
		cmd.Dir = root
		var out []byte
		if out, buildErr = cmd.CombinedOutput(); buildErr != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", buildErr, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// toplevels builds two stand-in systems (builtins.derivation) to publish.
func toplevels(tb testing.TB) [2]string {
	tb.Helper()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	var out [2]string
	for i := range out {
		expr := fmt.Sprintf(`derivation { name = "pullload-system-%d"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo %s-%d > $out" ]; }`, i+1, stamp, i+1)
		cmd := exec.Command("nix-build", "--no-out-link", "-E", expr)
		cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
		b, err := cmd.Output()
		if err != nil {
			tb.Fatalf("nix-build a stand-in system: %v", err)
		}
		out[i] = strings.TrimSpace(string(b))
	}
	return out
}

// Bounds of the server process under the test's load. They are bounds of
// resources (what 1000 connections may hold), not of speed: how fast
// anything happened is the benchmark's business (BenchmarkPullLoad).
const (
	testAgents = 1000
	// goroutinesPerAgent: a waiting long-poll holds its connection's
	// goroutine and the one net/http reads the connection with, to see
	// the client leave.
	goroutinesPerAgent = 3
	// goroutinesLeftOver: what may remain once every agent has gone
	// (timers, a connection being closed).
	goroutinesLeftOver = 10
	// rssBase and rssPerAgent bound the server's peak resident memory:
	// the process itself, plus what one connection with its waiting
	// request, buffers and goroutine stacks may take.
	rssBase     = 64 << 20
	rssPerAgent = 64 << 10
)

// TestThousandAgents runs 1000 simulated agents, each a host with its
// own key and connection, against a real `landscaper serve --pull-dir`:
// all long-poll, a new generation is published for every host, and every
// agent must get its own; the server's goroutines and memory must stay
// within bounds proportional to the agents and come back when they leave.
func TestThousandAgents(t *testing.T) {
	bin := landscaperBin(t)
	res, err := Run(context.Background(), Config{
		Agents:    testAgents,
		Bin:       bin,
		WorkDir:   t.TempDir(),
		Toplevels: toplevels(t),
		// One poll answered at once per agent, and few probes: the test
		// checks, the benchmark measures.
		Burst:          1,
		Probes:         20,
		Hold:           time.Second,
		PublishWorkers: 16,
		Logf:           func(f string, a ...any) { t.Logf(time.Now().Format("15:04:05.000 ")+f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteTable(&b, []*Result{res})
	WriteChecks(&b, []*Result{res})
	t.Logf("figures (timing is not asserted):\n%s", b.String())

	if res.Learned != testAgents {
		t.Errorf("%d of %d agents learnt their new generation", res.Learned, testAgents)
	}
	if res.AgentErrors != 0 {
		t.Errorf("%d polls failed; the first: %s", res.AgentErrors, res.FirstError)
	}
	if res.NotMine != 0 || res.WrongGeneration != 0 {
		t.Errorf("%d answers were not the asking host's generation, %d carried a generation never published for it", res.NotMine, res.WrongGeneration)
	}
	if len(res.Refused) != 0 {
		t.Errorf("the server refused requests: %v", res.Refused)
	}
	if res.ErrorLines != 0 {
		t.Errorf("the server logged %d lines at ERROR", res.ErrorLines)
	}
	if res.WaitingPeak != testAgents {
		t.Errorf("the server held at most %d long-polls at once, want one per agent, %d", res.WaitingPeak, testAgents)
	}
	if limit := res.GoroutinesBefore + goroutinesPerAgent*testAgents; res.GoroutinesPeak > limit {
		t.Errorf("the server ran %d goroutines at its peak: more than %d before the agents + %d per agent = %d", res.GoroutinesPeak, res.GoroutinesBefore, goroutinesPerAgent, limit)
	}
	if res.GoroutinesWaiting < int64(testAgents) {
		t.Errorf("the server ran %d goroutines while %d agents waited: the sampling missed them", res.GoroutinesWaiting, testAgents)
	}
	if res.GoroutinesAfter > res.GoroutinesBefore+goroutinesLeftOver || res.WaitingAfter != 0 {
		t.Errorf("after the agents left the server ran %d goroutines (%d before them) and held %d long-polls", res.GoroutinesAfter, res.GoroutinesBefore, res.WaitingAfter)
	}
	if limit := int64(rssBase + rssPerAgent*testAgents); res.RSSPeak > limit {
		t.Errorf("the server's peak resident memory was %d MiB, more than %d MiB + %d KiB per agent = %d MiB", res.RSSPeak>>20, rssBase>>20, rssPerAgent>>10, limit>>20)
	}
	// One nonce file per accepted request: every agent's poll answered
	// at once and its long-poll that brought the new generation, the
	// probe's polls, and the next long-polls the server took before the
	// agents stopped.
	if least := int64(testAgents*(1+1) + 20); int64(res.NonceFiles) < least || int64(res.NonceFiles) > res.RequestsSent {
		t.Errorf("the server wrote %d nonce files for %d requests sent, want between %d and that", res.NonceFiles, res.RequestsSent, least)
	}
}

// BenchmarkPullLoad runs the load for each number of agents in
// BENCH_PULL_AGENTS ("100 1000" by default), once per -benchtime
// iteration, and prints the figures as a Markdown table
// (scripts/bench-pull.sh runs it). BENCH_PULL_HOLD is how long all
// agents wait before the new generation (10s), BENCH_DIR where the pull
// directory goes (the default temporary directory), BENCH_LANDSCAPER
// another landscaper binary to measure (built from this tree by
// default).
func BenchmarkPullLoad(b *testing.B) {
	sizes := []int{100, 1000}
	if spec := os.Getenv("BENCH_PULL_AGENTS"); spec != "" {
		sizes = nil
		for _, f := range strings.Fields(spec) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("BENCH_PULL_AGENTS: %q is not a number of agents", f)
			}
			sizes = append(sizes, n)
		}
	}
	hold := 10 * time.Second
	if v := os.Getenv("BENCH_PULL_HOLD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("BENCH_PULL_HOLD: %q is not a duration", v)
		}
		hold = d
	}
	bin := os.Getenv("BENCH_LANDSCAPER")
	if bin == "" {
		bin = landscaperBin(b)
	}
	var results []*Result
	for _, n := range sizes {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			for range b.N {
				work, err := os.MkdirTemp(os.Getenv("BENCH_DIR"), "pullload-")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(work) })
				res, err := Run(context.Background(), Config{
					Agents:    n,
					Bin:       bin,
					WorkDir:   work,
					Toplevels: toplevels(b),
					Hold:      hold,
					Logf:      b.Logf,
				})
				if err != nil {
					b.Fatal(err)
				}
				results = append(results, res)
				b.ReportMetric(float64(res.Reach.P99)/float64(time.Millisecond), "reach-p99-ms")
				b.ReportMetric(float64(res.ImmediateLatency.P99)/float64(time.Millisecond), "poll-p99-ms")
				b.ReportMetric(res.RequestsPerSecond, "polls/s")
				b.ReportMetric(mib(res.RSSPeak), "peak-RSS-MiB")
			}
		})
	}
	fmt.Println()
	WriteTable(os.Stdout, results)
	fmt.Println()
	WriteChecks(os.Stdout, results)
}
