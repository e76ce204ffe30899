package local_test

import (
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestLifecycle runs each type through sdktest's lifecycle: create, a
// no-op plan, the planned outputs, read, delete.
func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	tests := []sdktest.Lifecycle{
		{Type: "local.file", Inputs: map[string]any{"name": filepath.Join(dir, "a.txt"), "contents": "hello\n", "mode": "0600"}},
		{Type: "local.exec", Inputs: map[string]any{"executable": "echo", "args": []string{"hi"}}, ReadSeesNoDelete: true},
	}
	for _, lc := range tests {
		t.Run(lc.Type, func(t *testing.T) {
			newHarness(t).RunLifecycle(lc)
		})
	}
}
