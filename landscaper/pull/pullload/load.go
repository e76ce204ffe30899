package pullload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
)

// Defaults of Config's zero values.
const (
	DefaultBurst          = 5
	DefaultProbes         = 200
	DefaultWait           = 60 * time.Second
	DefaultHold           = 3 * time.Second
	DefaultDeadline       = 2 * time.Minute
	DefaultPublishWorkers = 8
)

// Config says what load to make.
type Config struct {
	// Agents is how many hosts, each with its agent.
	Agents int
	// Bin is the landscaper binary to run as the server.
	Bin string
	// WorkDir holds the pull directory and the server's log.
	WorkDir string
	// Toplevels are the systems of the first and the second generation
	// published (any paths: nothing fetches them).
	Toplevels [2]string
	// Burst is how many polls each agent makes that the server answers
	// at once (DefaultBurst when zero).
	Burst int
	// Probes is how many polls, one after another, a probe host makes
	// while all agents wait, each answered at once (DefaultProbes when
	// zero).
	Probes int
	// Wait is the long-polls' wait= (DefaultWait when zero).
	Wait time.Duration
	// Hold is how long all agents wait, long-polling, before the second
	// generation is published; the server's CPU time is measured over it
	// (DefaultHold when zero).
	Hold time.Duration
	// Deadline bounds each wait for all agents: until all long-poll, and
	// until all know the second generation (DefaultDeadline when zero).
	// It is no pass mark: Run reports how many made it.
	Deadline time.Duration
	// PublishWorkers is how many hosts are published at once
	// (DefaultPublishWorkers when zero).
	PublishWorkers int
	// Logf, when set, is told of each phase.
	Logf func(format string, args ...any)
}

// Quantiles summarise a set of durations.
type Quantiles struct {
	N             int
	P50, P99, Max time.Duration
}

func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// Nearest rank: the smallest value at least q of the set reach.
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Quantiles{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// Result is what one run measured.
type Result struct {
	Agents int

	// ImmediateLatency is the latency of the polls the server answered
	// at once (wait= with a known= other than the host's generation), as
	// an agent sees it: signing, the round trip, checking the answer's
	// signature. An agent's first includes its TCP connect.
	ImmediateLatency Quantiles
	// ImmediateWall is the time from the start of those polls to the last
	// answer; RequestsPerSecond their number over it.
	ImmediateWall     time.Duration
	RequestsPerSecond float64
	// ProbeLatency is the latency of polls answered at once, made one
	// after another by one more host while every agent's long-poll
	// waits: what a host asking alone sees.
	ProbeLatency Quantiles

	// PublishDuration is how long writing the second generation of every
	// host took.
	PublishDuration time.Duration
	// Reach is, per agent, the time from the start of its host's publish
	// to the agent's holding the new generation (it was long-polling).
	Reach Quantiles
	// AllKnow is the time from the start of the publish until the last
	// agent holds the new generation.
	AllKnow time.Duration
	// Learned is how many agents got the new generation within Deadline.
	Learned int

	// The server process. Goroutines and open files are from its
	// /metrics: before any agent, the most seen (sampled every 200 ms),
	// while every agent waited, and once the agents stopped.
	GoroutinesBefore, GoroutinesPeak, GoroutinesWaiting, GoroutinesAfter int64
	OpenFDsBefore, OpenFDsPeak, OpenFDsAfter                             int64
	// WaitingPeak is the most long-polls it held at once (its
	// landscaper_pull_waiting); WaitingAfter once the agents stopped.
	WaitingPeak, WaitingAfter int64
	// RSSBefore and RSSAfter are its resident memory before the agents
	// and after they stopped; RSSPeak its peak over the run (VmHWM).
	RSSBefore, RSSPeak, RSSAfter int64
	// HoldCPU is the CPU time it used while every agent waited, over
	// Hold; CPU its CPU time over the whole run.
	HoldCPU, Hold, CPU time.Duration

	// RequestsSent is how many requests the agents made; NonceFiles how
	// many nonce files the server wrote (one per accepted request).
	RequestsSent int64
	NonceFiles   int
	// Refused are its refusal counters (landscaper_pull_refused_total)
	// by reason, non-zero ones only; ErrorLines its log lines at ERROR.
	Refused    map[string]int64
	ErrorLines int64

	// AgentErrors counts polls that failed (FirstError is the first);
	// NotMine the answers that were not the host's own generation;
	// WrongGeneration answers with a generation never published for it.
	AgentErrors     int64
	FirstError      string
	NotMine         int64
	WrongGeneration int64
}

func (c *Config) defaults() error {
	if c.Agents < 1 {
		return fmt.Errorf("pull load: %d agents", c.Agents)
	}
	if c.Bin == "" || c.WorkDir == "" {
		return errors.New("pull load: no landscaper binary or work directory")
	}
	if c.Toplevels[0] == "" || c.Toplevels[1] == "" || c.Toplevels[0] == c.Toplevels[1] {
		return errors.New("pull load: want two different toplevels")
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.Probes <= 0 {
		c.Probes = DefaultProbes
	}
	if c.Wait <= 0 {
		c.Wait = DefaultWait
	}
	if c.Hold <= 0 {
		c.Hold = DefaultHold
	}
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	if c.PublishWorkers <= 0 {
		c.PublishWorkers = DefaultPublishWorkers
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// tally is what the agents count while they run.
type tally struct {
	sent, errors, notMine, wrongGen atomic.Int64
	mu                              sync.Mutex
	firstError                      string
}

func (t *tally) failed(err error) {
	if errors.Is(err, errNotMine) {
		t.notMine.Add(1)
	}
	if t.errors.Add(1) == 1 {
		t.mu.Lock()
		t.firstError = err.Error()
		t.mu.Unlock()
	}
}

// Run makes the load: it publishes a first generation for every host,
// starts the server, and then
//
//  1. every agent makes Burst polls that the server answers at once;
//  2. every agent long-polls (wait=Wait, known=its generation) until the
//     server holds them all, and they wait for Hold; then one more host
//     makes Probes polls the server answers at once, one after another;
//  3. a second generation is published for every host, and each agent
//     takes it from its long-poll and polls again for the next;
//  4. the agents stop, and the server is watched until its goroutines
//     come back to where they were before the agents.
//
// An error is a run that could not be made (no server, a publish
// failed); what the agents saw, failures included, is in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := cfg.Agents
	res := &Result{Agents: n, Hold: cfg.Hold, Refused: map[string]int64{}}
	cfg.Logf("making %d host keys and their generations", n)
	// The agents' hosts, and the probe's.
	hosts, err := NewFleet(n + 1)
	if err != nil {
		return nil, err
	}
	var gens [2]Generations
	for i := range gens {
		if gens[i], err = NewGenerations(hosts, cfg.Toplevels[i]); err != nil {
			return nil, err
		}
	}
	dir := pulldir.Dir{Path: filepath.Join(cfg.WorkDir, "pull")}
	if err := os.MkdirAll(dir.Path, 0o755); err != nil {
		return nil, fmt.Errorf("pull directory: %w", err)
	}
	first, _, err := Publish(ctx, dir, hosts, gens[0], cfg.PublishWorkers)
	if err != nil {
		return nil, err
	}

	srv, err := StartServer(ctx, cfg.Bin, dir, cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	cpu0, err := srv.CPUTime()
	if err != nil {
		return nil, err
	}
	before, err := srv.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	res.GoroutinesBefore, res.OpenFDsBefore = before["go_goroutines"], before["process_open_fds"]
	if res.RSSBefore, _, err = srv.Memory(); err != nil {
		return nil, err
	}
	smp := startSampler(ctx, srv)
	defer smp.stop()

	agents := make([]*agent, n)
	for i, h := range hosts[:n] {
		if agents[i], err = newAgent(srv, h); err != nil {
			return nil, err
		}
	}
	probe, err := newAgent(srv, hosts[n])
	if err != nil {
		return nil, err
	}
	var t tally
	latencies := make([]time.Duration, n*cfg.Burst)
	learnedAt := make([]atomic.Int64, n)
	var burst, running sync.WaitGroup
	burst.Add(n)
	var learned atomic.Int64
	allLearned := make(chan struct{})
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()

	cfg.Logf("%d agents: %d polls each, answered at once", n, cfg.Burst)
	start := time.Now()
	for i, a := range agents {
		running.Go(func() {
			defer a.close()
			for k := range cfg.Burst {
				t.sent.Add(1)
				t0 := time.Now()
				gen, err := a.poll(agentCtx, 0, cfg.Wait)
				latencies[i*cfg.Burst+k] = time.Since(t0)
				switch {
				case err != nil:
					t.failed(err)
				case gen != first[i]:
					t.wrongGen.Add(1)
				}
			}
			burst.Done()
			// Long-poll, as a running agent does, for the generation after
			// the first, and then for the one after that.
			known, got := first[i], false
			for agentCtx.Err() == nil {
				t.sent.Add(1)
				gen, err := a.poll(agentCtx, known, cfg.Wait)
				if agentCtx.Err() != nil {
					return
				}
				if err != nil {
					t.failed(err)
					sleep(agentCtx, time.Second)
					continue
				}
				switch {
				case gen == first[i]+1 && !got:
					learnedAt[i].Store(time.Now().UnixNano())
					got = true
					if learned.Add(1) == int64(n) {
						close(allLearned)
					}
				case gen != first[i] && gen != first[i]+1:
					t.wrongGen.Add(1)
				}
				known = gen
			}
		})
	}
	burst.Wait()
	res.ImmediateWall = time.Since(start)
	res.ImmediateLatency = quantiles(latencies)
	res.RequestsPerSecond = float64(len(latencies)) / res.ImmediateWall.Seconds()

	cfg.Logf("waiting until the server holds %d long-polls", n)
	if err := smp.await(ctx, cfg.Deadline, func(m map[string]int64) bool { return m["landscaper_pull_waiting"] >= int64(n) }); err != nil {
		return nil, fmt.Errorf("the server never held all %d long-polls: %w", n, err)
	}
	// Over the hold the server does nothing but hold the polls: not even
	// the sampler's scrapes.
	smp.pause()
	cpuA, err := srv.CPUTime()
	if err != nil {
		return nil, err
	}
	sleep(ctx, cfg.Hold)
	cpuB, err := srv.CPUTime()
	if err != nil {
		return nil, err
	}
	smp.resume()
	res.HoldCPU = cpuB - cpuA
	waiting, err := srv.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	res.GoroutinesWaiting = waiting["go_goroutines"]

	cfg.Logf("%d polls of one more host, one after another", cfg.Probes)
	probes := make([]time.Duration, 0, cfg.Probes)
	for range cfg.Probes {
		t.sent.Add(1)
		t0 := time.Now()
		gen, err := probe.poll(ctx, 0, cfg.Wait)
		probes = append(probes, time.Since(t0))
		switch {
		case err != nil:
			t.failed(err)
		case gen != first[n]:
			t.wrongGen.Add(1)
		}
	}
	res.ProbeLatency = quantiles(probes)
	probe.close()

	cfg.Logf("publishing the second generation of %d hosts", n)
	pubStart := time.Now()
	_, started, err := Publish(ctx, dir, hosts, gens[1], cfg.PublishWorkers)
	if err != nil {
		return nil, err
	}
	res.PublishDuration = time.Since(pubStart)
	select {
	case <-allLearned:
	case <-time.After(cfg.Deadline):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var reach []time.Duration
	var last time.Time
	for i := range learnedAt {
		at := learnedAt[i].Load()
		if at == 0 {
			continue
		}
		when := time.Unix(0, at)
		reach = append(reach, when.Sub(started[i]))
		if when.After(last) {
			last = when
		}
	}
	res.Learned = len(reach)
	res.Reach = quantiles(reach)
	if !last.IsZero() {
		res.AllKnow = last.Sub(pubStart)
	}

	cfg.Logf("stopping the agents")
	stopAgents()
	running.Wait()
	// Every agent's connection is closed: the server should be back
	// where it was before them.
	_ = smp.await(ctx, 15*time.Second, func(m map[string]int64) bool {
		return m["landscaper_pull_waiting"] == 0 && m["go_goroutines"] <= res.GoroutinesBefore
	})
	after, err := srv.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	smp.stop()
	res.GoroutinesAfter, res.OpenFDsAfter, res.WaitingAfter = after["go_goroutines"], after["process_open_fds"], after["landscaper_pull_waiting"]
	res.GoroutinesPeak, res.OpenFDsPeak, res.WaitingPeak = smp.peaks()
	for k, v := range after {
		if reason, ok := refusedReason(k); ok && v != 0 {
			res.Refused[reason] = v
		}
	}
	if res.RSSAfter, res.RSSPeak, err = srv.Memory(); err != nil {
		return nil, err
	}
	cpu1, err := srv.CPUTime()
	if err != nil {
		return nil, err
	}
	res.CPU = cpu1 - cpu0
	if res.NonceFiles, err = NonceFiles(dir); err != nil {
		return nil, err
	}
	srv.Stop()
	res.ErrorLines = srv.ErrorLines()
	res.RequestsSent = t.sent.Load()
	res.AgentErrors, res.NotMine, res.WrongGeneration = t.errors.Load(), t.notMine.Load(), t.wrongGen.Load()
	res.FirstError = t.firstError
	return res, nil
}

// refusedReason is the reason of a landscaper_pull_refused_total series.
func refusedReason(series string) (string, bool) {
	const prefix, suffix = `landscaper_pull_refused_total{reason="`, `"}`
	if len(series) < len(prefix)+len(suffix) || series[:len(prefix)] != prefix || series[len(series)-len(suffix):] != suffix {
		return "", false
	}
	return series[len(prefix) : len(series)-len(suffix)], true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sampler reads the server's /metrics every 200 ms and keeps the peaks.
type sampler struct {
	srv    *Server
	mu     sync.Mutex
	latest map[string]int64
	peak   map[string]int64
	paused bool
	// scraping is held during each scrape.
	scraping sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

const sampleEvery = 200 * time.Millisecond

func startSampler(ctx context.Context, srv *Server) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{srv: srv, peak: map[string]int64{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			s.scrape(ctx)
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

func (s *sampler) scrape(ctx context.Context) {
	s.scraping.Lock()
	defer s.scraping.Unlock()
	s.mu.Lock()
	paused := s.paused
	s.mu.Unlock()
	if paused {
		return
	}
	m, err := s.srv.Metrics(ctx)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = m
	for _, k := range []string{"go_goroutines", "process_open_fds", "landscaper_pull_waiting"} {
		s.peak[k] = max(s.peak[k], m[k])
	}
}

// pause stops the scrapes; it returns once none is under way.
func (s *sampler) pause() {
	s.scraping.Lock()
	defer s.scraping.Unlock()
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

func (s *sampler) resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
}

func (s *sampler) stop() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}

func (s *sampler) peaks() (goroutines, fds, waiting int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak["go_goroutines"], s.peak["process_open_fds"], s.peak["landscaper_pull_waiting"]
}

// await waits until a sample satisfies cond, for at most within.
func (s *sampler) await(ctx context.Context, within time.Duration, cond func(map[string]int64) bool) error {
	end := time.Now().Add(within)
	for {
		s.mu.Lock()
		m := s.latest
		s.mu.Unlock()
		if m != nil && cond(m) {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("not within %s (last sample: %d goroutines, %d long-polls held)", within, m["go_goroutines"], m["landscaper_pull_waiting"])
		}
		sleep(ctx, sampleEvery/2)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
