package pxenbp_test

import (
	"testing"

	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestLifecycle runs an entry through sdktest's lifecycle: create, a
// no-op plan, the planned outputs, read, delete, and gone after it.
func TestLifecycle(t *testing.T) {
	files := makeBootFiles(t)
	tests := []struct {
		name   string
		inputs map[string]any
	}{
		{"plain", files.inputs(t.TempDir())},
		{"with files", with(files.inputs(t.TempDir()), "files", map[string]any{"/etc/ssh/ssh_host_ed25519_key": map[string]any{"contents": "not a real key\n", "mode": "0600"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newHarness(t).RunLifecycle(sdktest.Lifecycle{Type: typ, Inputs: tt.inputs})
		})
	}
}
