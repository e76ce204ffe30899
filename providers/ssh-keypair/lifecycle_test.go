package sshkeypair_test

import (
	"testing"

	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestLifecycle runs each algorithm through sdktest's lifecycle: create,
// a no-op plan, the planned outputs, read, delete. A key pair lives in the
// state alone, so Read cannot see a delete.
func TestLifecycle(t *testing.T) {
	for _, inputs := range []map[string]any{
		{"algorithm": "ed25519", "comment": "lifecycle"},
		{"algorithm": "ecdsa", "bits": 384},
		{"algorithm": "rsa", "bits": 2048},
	} {
		t.Run(inputs["algorithm"].(string), func(t *testing.T) {
			newHarness(t).RunLifecycle(sdktest.Lifecycle{Type: typ, Inputs: inputs, ReadSeesNoDelete: true})
		})
	}
}
