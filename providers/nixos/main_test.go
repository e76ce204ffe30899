package nixos_test

import (
	"os"
	"testing"

	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// TestMain lets this test binary be the ssh shim of the closure copies the
// tests make in process (remote.Client.Copy runs this program as "ssh").
func TestMain(m *testing.M) {
	if remote.SSHShimRequested() {
		os.Exit(remote.RunSSHShim())
	}
	os.Exit(m.Run())
}
