// Package testbin builds the landscaper binary and the provider binaries
// once per test process, for tests that run the real command line.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	once     sync.Once
	dir      string
	buildErr error
	output   []byte
)

// Root returns the repository root (where go.mod is).
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testbin: cannot find source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Dir builds landscaper and every providers/*/cmd/* binary into one
// directory (so landscaper finds its providers next to itself) and returns
// it. Extra packages (e.g. a test provider) can be named by import path
// relative to the root ("./landscaper/internal/testprovider/cmd/landscaper-provider-testkit").
// The directory is shared by the whole test process; Cleanup removes it.
func Dir(t testing.TB, extra ...string) string {
	t.Helper()
	root := Root(t)
	once.Do(func() {
		dir, buildErr = os.MkdirTemp("", "landscaper-testbin-")
		if buildErr != nil {
			return
		}
		pkgs := []string{"./landscaper/cmd/landscaper"}
		cmds, _ := filepath.Glob(filepath.Join(root, "providers", "*", "cmd", "*"))
		for _, c := range cmds {
			rel, _ := filepath.Rel(root, c)
			pkgs = append(pkgs, "./"+rel)
		}
		pkgs = append(pkgs, extra...)
		args := append([]string{"build", "-o", dir + "/"}, pkgs...)
		if raceEnabled {
			args = append([]string{"build", "-race", "-o", dir + "/"}, pkgs...)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		output, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v\n%s", buildErr, output)
	}
	return dir
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" && strings.Contains(dir, "landscaper-testbin-") {
		os.RemoveAll(dir)
	}
}
