package bootserver

import (
	"os"
	"runtime"
	"testing"
)

// TestProcessMetrics reads the process's gauges at /metrics: the test
// process is the server here, so they must be what it holds.
func TestProcessMetrics(t *testing.T) {
	f := newFixture(t, nil)
	m := f.scrape()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		series   string
		low, top int64
	}{
		// Serve's goroutines alone are more than 2; the test's own are
		// counted too.
		{"go_goroutines", 3, int64(runtime.NumGoroutine()) + 100},
		{"process_resident_memory_bytes", 1 << 20, 1 << 40},
		{"process_open_fds", 3, int64(len(fds)) + 100},
	} {
		v, ok := m[c.series]
		if !ok || v < c.low || v > c.top {
			t.Errorf("%s = %d (present: %v), want between %d and %d", c.series, v, ok, c.low, c.top)
		}
	}
}
