// Package installtest runs the installation flow of examples/install end to
// end with real components: the landscaper binary and its providers, `landscaper
// serve`, nix, curl (TFTP), GNU cpio and OpenSSH's sshd. The new server is
// a stand-in host (internal/testhost) that "boots" the way a machine does:
// it asks the boot server for its entry until there is one, fetches the
// entry's files over TFTP, unpacks the extra initrd, and only then starts
// its sshd with the host key and authorized_keys it found there.
//
// The tests need root, nix, openssh-server, openssh-client, curl, cpio and
// util-linux (scripts/install-deps.sh installs them) and fail, naming what
// is missing, without them.
//
//	go test -count=1 ./landscaper/installtest/
package installtest

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
