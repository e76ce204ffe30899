package bootserver

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// writeProcessMetrics writes what the whole process holds, under the
// names Prometheus' own clients use: go_goroutines, and, where /proc
// tells (Linux), process_resident_memory_bytes and process_open_fds. A
// figure /proc cannot give is left out rather than written as zero.
func writeProcessMetrics(w io.Writer) {
	fmt.Fprintln(w, "# HELP go_goroutines Goroutines that exist now.")
	fmt.Fprintln(w, "# TYPE go_goroutines gauge")
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
	if rss, ok := residentBytes(); ok {
		fmt.Fprintln(w, "# HELP process_resident_memory_bytes Resident memory of the process, in bytes.")
		fmt.Fprintln(w, "# TYPE process_resident_memory_bytes gauge")
		fmt.Fprintf(w, "process_resident_memory_bytes %d\n", rss)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fmt.Fprintln(w, "# HELP process_open_fds Open file descriptors of the process.")
		fmt.Fprintln(w, "# TYPE process_open_fds gauge")
		fmt.Fprintf(w, "process_open_fds %d\n", len(fds))
	}
}

// residentBytes reads the process's resident set from /proc/self/statm
// (its second field, in pages).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
