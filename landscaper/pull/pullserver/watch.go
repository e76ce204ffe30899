package pullserver

import (
	"context"
	"sync"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
)

// watcher sees new desired generations for the long-polls: while any
// poll waits, one goroutine looks at the desired.json of every host that
// polls wait for, once each PollEvery, and wakes that host's polls when
// the file changed. A thousand waiting hosts thus cost one timer and a
// thousand stats per look, not a thousand timers and goroutine wake-ups.
// It keeps nothing but the files' stamps while polls wait: the pull
// directory stays the only state.
type watcher struct {
	dir   pulldir.Dir
	every time.Duration

	mu      sync.Mutex
	hosts   map[string]*watchedHost
	running bool
}

// watchedHost is a host some long-polls wait for.
type watchedHost struct {
	// stamp is its desired.json's pulldir.DesiredStamp when last looked
	// at.
	stamp string
	// changed is closed when the stamp changes (then replaced).
	changed chan struct{}
	waiters int
}

func newWatcher(dir pulldir.Dir, every time.Duration) *watcher {
	return &watcher{dir: dir, every: every, hosts: map[string]*watchedHost{}}
}

// watch returns a channel that is closed when the host's desired.json
// changes after this call, and the function to call when no longer
// waiting.
func (w *watcher) watch(id string) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hosts[id]
	if h == nil {
		h = &watchedHost{stamp: w.dir.DesiredStamp(id), changed: make(chan struct{})}
		w.hosts[id] = h
	}
	h.waiters++
	if !w.running {
		w.running = true
		go w.run()
	}
	var once sync.Once
	return h.changed, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if h.waiters--; h.waiters == 0 && w.hosts[id] == h {
				delete(w.hosts, id)
			}
		})
	}
}

// run looks at the watched hosts each w.every until none is watched.
func (w *watcher) run() {
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	type look struct {
		id    string
		host  *watchedHost
		stamp string
	}
	var looks []look
	for range tick.C {
		w.mu.Lock()
		if len(w.hosts) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		looks = looks[:0]
		for id, h := range w.hosts {
			looks = append(looks, look{id: id, host: h, stamp: h.stamp})
		}
		w.mu.Unlock()
		// The stats are made without the lock: polls come and go
		// meanwhile.
		for i := range looks {
			looks[i].stamp = w.dir.DesiredStamp(looks[i].id)
		}
		w.mu.Lock()
		for _, l := range looks {
			if l.host.stamp != l.stamp {
				l.host.stamp = l.stamp
				close(l.host.changed)
				l.host.changed = make(chan struct{})
			}
		}
		w.mu.Unlock()
	}
}

// awaitChange waits until the host's desired generation is other than
// known, for at most wait; it returns what is desired then.
func (s *Server) awaitChange(ctx context.Context, id string, known int64, wait time.Duration) (pulldir.Desired, bool, error) {
	s.metrics.waiting.Add(1)
	defer s.metrics.waiting.Add(-1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Watch first, then read: a generation written in between is
		// read here, one written after wakes the watch.
		changed, stop := s.watch.watch(id)
		d, ok, err := s.cfg.Dir.Desired(id)
		if err != nil || generationOf(d, ok) != known {
			stop()
			return d, ok, err
		}
		select {
		case <-changed:
			stop()
			continue
		case <-ctx.Done():
		case <-s.done:
		case <-timer.C:
		}
		stop()
		return s.cfg.Dir.Desired(id)
	}
}
