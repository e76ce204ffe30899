package testbin

import (
	"bytes"
	"os"
	"strings"
	"sync"
)

// Env is the test process's environment for running landscaper: without
// the variables that change landscaper's behaviour, with colours off and
// no substituters (the machines tests run on are offline).
func Env() []string {
	var env []string
	nixConfig := "substituters ="
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "LANDSCAPER_"), strings.HasPrefix(kv, "NO_COLOR="):
			continue
		case strings.HasPrefix(kv, "NIX_CONFIG="):
			nixConfig = strings.TrimPrefix(kv, "NIX_CONFIG=") + "\n" + nixConfig
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_COLOR=1", "NIX_CONFIG="+nixConfig)
}

// Output collects a process's output while it runs; it is safe to read
// while the process writes.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Len is how many bytes were written so far.
func (o *Output) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Len()
}
