package vmtest

import (
	"os"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
