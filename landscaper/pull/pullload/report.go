package pullload

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteTable writes results as a Markdown table, one row per run.
func WriteTable(w io.Writer, results []*Result) {
	fmt.Fprintln(w, "| agents | publish s | all know s | reach p50 / p99 / max ms | immediate poll, all agents at once: p50 / p99 / max ms | polls/s | immediate poll, one host alone while all wait: p50 / p99 / max ms | server peak RSS MiB (before, after) | goroutines before / peak / all waiting / after | server CPU while all wait, ms/s | server CPU, whole run s | requests sent | nonce files |")
	fmt.Fprintln(w, "|---:|---:|---:|---|---|---:|---|---|---|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %d | %.2f | %.2f | %s | %s | %.0f | %s | %.1f (%.1f, %.1f) | %d / %d / %d / %d | %.0f | %.2f | %d | %d |\n",
			r.Agents, r.PublishDuration.Seconds(), r.AllKnow.Seconds(), ms3(r.Reach), ms3(r.ImmediateLatency), r.RequestsPerSecond, ms3(r.ProbeLatency),
			mib(r.RSSPeak), mib(r.RSSBefore), mib(r.RSSAfter),
			r.GoroutinesBefore, r.GoroutinesPeak, r.GoroutinesWaiting, r.GoroutinesAfter,
			float64(r.HoldCPU.Milliseconds())/r.Hold.Seconds(), r.CPU.Seconds(), r.RequestsSent, r.NonceFiles)
	}
}

// WriteChecks writes, per run, what the agents and the server counted
// that should be nothing: failures, foreign answers, refusals.
func WriteChecks(w io.Writer, results []*Result) {
	for _, r := range results {
		refused := "none"
		if len(r.Refused) > 0 {
			var parts []string
			for k, v := range r.Refused {
				parts = append(parts, fmt.Sprintf("%s %d", k, v))
			}
			slices.Sort(parts)
			refused = strings.Join(parts, ", ")
		}
		fmt.Fprintf(w, "- %d agents: %d of %d learnt the new generation; %d failed polls, %d answers not the host's own, %d with a generation never published for it; refused: %s; server ERROR log lines: %d; most long-polls held at once: %d (%d after the agents stopped); open files before / peak / after: %d / %d / %d\n",
			r.Agents, r.Learned, r.Agents, r.AgentErrors, r.NotMine, r.WrongGeneration, refused, r.ErrorLines, r.WaitingPeak, r.WaitingAfter, r.OpenFDsBefore, r.OpenFDsPeak, r.OpenFDsAfter)
		if r.FirstError != "" {
			fmt.Fprintf(w, "  first failure: %s\n", r.FirstError)
		}
	}
}

func ms3(q Quantiles) string {
	return fmt.Sprintf("%s / %s / %s", ms(q.P50), ms(q.P99), ms(q.Max))
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
