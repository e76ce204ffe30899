// Command landscaper plans and applies Landscaper deployments.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/landscaper-nix/landscaper/landscaper/cli"
)

func main() {
	// The engine's heap is mostly short-lived (evaluation output, provider
	// answers): collecting at 50% growth instead of Go's default 100%
	// keeps a large deployment's peak memory about a fifth lower for a
	// little more CPU. GOGC, when set, decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// LANDSCAPER_CPUPROFILE writes a CPU profile of the run, for
	// benchmarks and performance work.
	if path := os.Getenv("LANDSCAPER_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			code := cli.Main(os.Args[1:], cli.System())
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
		fmt.Fprintf(os.Stderr, "landscaper: cannot write a CPU profile to %s\n", path)
	}
	code := cli.Main(os.Args[1:], cli.System())
	// LANDSCAPER_MEMPROFILE writes a profile of the run's allocations.
	if path := os.Getenv("LANDSCAPER_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	os.Exit(code)
}
