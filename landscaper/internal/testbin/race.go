//go:build race

package testbin

// raceEnabled builds the binaries with the race detector when the tests
// themselves run with it, so the engine's own concurrency is checked too.
const raceEnabled = true
