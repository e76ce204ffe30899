package engine

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// timeline writes when each phase of a run ended, for performance work
// (LANDSCAPER_TIMELINE=1): seconds since the engine was opened, and what
// ended. A nil timeline writes nothing.
type timeline struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newTimeline(w io.Writer) *timeline {
	if w == nil {
		return nil
	}
	return &timeline{w: w, start: time.Now()}
}

// mark writes one line: "timeline 1.234 s  evaluated".
func (t *timeline) mark(format string, args ...any) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "timeline %7.3f s  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}
