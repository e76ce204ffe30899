package engine

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// buildTestProvider builds a provider of engine/testdata (pkg: its
// directory name) and returns the binary's path.
func buildTestProvider(t *testing.T, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "landscaper-provider-"+name)
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./landscaper/engine/testdata/"+pkg)
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test provider %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// openWithProvider opens an engine on dir/landscaper.nix and the state
// beside it, with the provider name served by bin; the engine is closed
// when the test ends.
func openWithProvider(t *testing.T, dir, name, bin string, noRefresh bool) *Engine {
	t.Helper()
	e, err := Open(t.Context(), Options{
		Source:    eval.Source{File: filepath.Join(dir, "landscaper.nix")},
		Backend:   state.NewFile(filepath.Join(dir, ".landscaper", "state.json")),
		Builtins:  map[string]string{name: bin},
		Dir:       dir,
		NoRefresh: noRefresh,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
