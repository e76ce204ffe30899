// Command landscaper plans and applies Landscaper deployments.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/landscaper-nix/landscaper/landscaper/cli"
)

func main() {
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
