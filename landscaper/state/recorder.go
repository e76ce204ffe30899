package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Recorder keeps a state in memory while an apply changes it and writes it
// to a Backend in the background, group-commit style: changes return at
// once; a background writer writes the whole state whenever it has changed,
// and changes made while a write is in progress go into the next write.
// Sync waits until the changes made before it are durable.
//
// Every write is of the whole state as it was at one moment; a failed write
// leaves the in-memory state as it is and is retried by the next change,
// Sync or Close.
//
// A Recorder is safe for concurrent use. Close must be called to stop its
// writer goroutine.
type Recorder struct {
	b Backend

	mu sync.Mutex
	// state is owned by the Recorder. Resources and pending records in it
	// are copies and never changed in place, so a shallow copy of the maps
	// is a consistent snapshot to write.
	state *State
	// gen counts changes; durable is the gen of the last successful write
	// and attempted the gen of the last write started.
	gen, durable, attempted uint64
	// retry asks the writer to write even if the last attempt already
	// covered gen (because it failed).
	retry bool
	// started and finished count write attempts; lastErr is the result of
	// the last finished one and firstErr the first failure.
	started, finished uint64
	lastErr, firstErr error
	// done is closed and replaced whenever an attempt finishes.
	done   chan struct{}
	closed bool

	kick chan struct{}
	// urgent is signalled by Sync: write now instead of gathering changes.
	urgent  chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	closeOnce sync.Once
	closeErr  error
	// lastWrite is how long the last write took (under mu).
	lastWrite time.Duration
}

// NewRecorder returns a Recorder that writes s to b, and starts its
// writer. The Recorder keeps a copy of s: later changes to s are not seen,
// and the recorded state is read with Snapshot.
func NewRecorder(b Backend, s *State) *Recorder {
	s = s.Clone()
	if s.Resources == nil {
		s.Resources = map[string]*Resource{}
	}
	if s.Pending == nil {
		s.Pending = map[string]*Pending{}
	}
	r := &Recorder{
		b:       b,
		state:   s,
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		urgent:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go r.run()
	return r
}

// change applies fn to the state under the lock and wakes the writer.
func (r *Recorder) change(fn func(s *State)) {
	r.mu.Lock()
	fn(r.state)
	r.gen++
	r.mu.Unlock()
	r.wake()
}

func (r *Recorder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// SetResource records res (a copy of it) under name.
func (r *Recorder) SetResource(name string, res *Resource) {
	res = res.Clone()
	r.change(func(s *State) { s.Resources[name] = res })
}

// DeleteResource removes the record of name.
func (r *Recorder) DeleteResource(name string) {
	r.change(func(s *State) { delete(s.Resources, name) })
}

// SetPending records p (a copy of it) as the operation in flight for name.
func (r *Recorder) SetPending(name string, p *Pending) {
	p = p.Clone()
	r.change(func(s *State) { s.Pending[name] = p })
}

// ClearPending removes the pending record of name.
func (r *Recorder) ClearPending(name string) {
	r.change(func(s *State) { delete(s.Pending, name) })
}

// Snapshot returns a deep copy of the state as recorded in memory, with
// the serial of the last successful write.
func (r *Recorder) Snapshot() *State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Clone()
}

// Sync waits until every change made before it was called has been
// written. If the write of those changes fails, Sync returns its error; the
// changes stay in memory and the next Sync or Close writes them again.
// Sync returns early with ctx's error if ctx is done first.
func (r *Recorder) Sync(ctx context.Context) error {
	r.mu.Lock()
	target := r.gen
	if r.durable >= target {
		r.mu.Unlock()
		return nil
	}
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("sync state %s: the recorder is closed", r.b.Describe())
	}
	// Any attempt after seq is started after this call and so covers
	// target.
	seq := r.started
	r.retry = true
	for {
		done := r.done
		r.mu.Unlock()
		select {
		case r.urgent <- struct{}{}:
		default:
		}
		r.wake()
		select {
		case <-ctx.Done():
			return fmt.Errorf("sync state %s: %w", r.b.Describe(), ctx.Err())
		case <-done:
		}
		r.mu.Lock()
		if r.durable >= target {
			r.mu.Unlock()
			return nil
		}
		if r.finished > seq && r.lastErr != nil {
			err := r.lastErr
			r.mu.Unlock()
			return err
		}
	}
}

// Close writes what is not written yet and stops the writer. It returns
// the error of that last write if it fails, and also the first error of any
// earlier write, even if a later write succeeded; in that case the error
// says so.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		err := r.Sync(ctx)
		r.mu.Lock()
		r.closed = true
		first := r.firstErr
		r.mu.Unlock()
		close(r.stop)
		select {
		case <-r.stopped:
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("close state recorder %s: %w", r.b.Describe(), ctx.Err())
			}
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrStale) {
			// Every operation's pending record was written before it
			// started (Sync), so what is lost is results, which the next
			// run settles by asking the providers.
			err = fmt.Errorf("%w (the state keeps what was written before: results since then are not saved, and the next run settles the operations recorded as pending)", err)
		}
		switch {
		case first == nil:
			r.closeErr = err
		case err == nil:
			r.closeErr = fmt.Errorf("an earlier write of state %s failed (a later write succeeded and the state is complete): %w", r.b.Describe(), first)
		case errors.Is(err, first) || strings.Contains(err.Error(), first.Error()):
			// The same failure again: say it once.
			r.closeErr = err
		default:
			r.closeErr = errors.Join(err, fmt.Errorf("an earlier write of state %s failed: %w", r.b.Describe(), first))
		}
	})
	return r.closeErr
}

// gatherTime is how long the writer gathers changes nobody waits for
// before it writes them: gatherFor, or longer when writing the state takes
// long (a large state, a slow disk), so that writes that no one waits for
// take at most about a ninth of the time (they share the machine with the
// operations themselves: a fifth was a sixth of an apply's CPU at 10,000
// members). Every operation's pending record
// is written before it starts, so a result written later is never lost: a
// run killed in between settles the operation from what its provider reads.
func (r *Recorder) gatherTime() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return min(max(gatherFor, 8*r.lastWrite), maxGather)
}

// maxGather bounds gatherTime.
const maxGather = 2 * time.Second

// gatherFor is how long the writer waits for more changes when no Sync is
// waiting.
const gatherFor = 25 * time.Millisecond

// run is the writer: it writes whenever the state has changed since the
// last attempt, or a Sync asks for a retry.
func (r *Recorder) run() {
	defer close(r.stopped)
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		}
		// Changes nobody waits for are gathered for a moment, so that a
		// burst of results makes one write, not one each.
		select {
		case <-r.urgent:
		default:
			timer := time.NewTimer(r.gatherTime())
			select {
			case <-r.urgent:
			case <-timer.C:
			case <-r.stop:
			}
			timer.Stop()
		}
		if r.writeOnce() {
			// Changes made during the write wait for the next round, which
			// gathers again.
			r.wake()
		}
	}
}

// writeOnce writes the state if there is anything to write, and reports
// whether it tried.
func (r *Recorder) writeOnce() bool {
	r.mu.Lock()
	if r.durable >= r.gen || (r.attempted >= r.gen && !r.retry) {
		r.mu.Unlock()
		return false
	}
	r.retry = false
	gen := r.gen
	r.attempted = gen
	r.started++
	snap := *r.state
	snap.Resources = make(map[string]*Resource, len(r.state.Resources))
	for k, v := range r.state.Resources {
		snap.Resources[k] = v
	}
	snap.Pending = make(map[string]*Pending, len(r.state.Pending))
	for k, v := range r.state.Pending {
		snap.Pending[k] = v
	}
	r.mu.Unlock()

	// The write must not be cut short half way by a caller's context.
	began := time.Now()
	err := r.b.Write(context.Background(), &snap)
	took := time.Since(began)

	r.mu.Lock()
	r.lastWrite = took
	r.finished++
	r.lastErr = err
	if err == nil {
		r.durable = max(r.durable, gen)
		r.state.Serial = snap.Serial
	} else if r.firstErr == nil {
		r.firstErr = err
	}
	close(r.done)
	r.done = make(chan struct{})
	r.mu.Unlock()
	return true
}
