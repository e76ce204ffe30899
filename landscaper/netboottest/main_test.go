package netboottest

import (
	"fmt"
	"os"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// tmpRoot holds what the tests share for the whole test process: the boot
// assets and the deployment most tests boot from. TestMain removes it.
var tmpRoot string

func TestMain(m *testing.M) {
	var err error
	tmpRoot, err = os.MkdirTemp("", "landscaper-netboottest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netboottest:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	testbin.Cleanup()
	os.Exit(code)
}
