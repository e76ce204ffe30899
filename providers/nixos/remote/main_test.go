package remote

import (
	"os"
	"testing"
)

// TestMain lets this test binary be the ssh shim of Copy.
func TestMain(m *testing.M) {
	if SSHShimRequested() {
		os.Exit(RunSSHShim())
	}
	os.Exit(m.Run())
}
