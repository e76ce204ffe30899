// Command landscaper-provider-ssh-keypair serves the ssh-keypair provider
// (ssh-keypair.keypair) to the Landscaper engine. It is started by the
// engine, not by hand.
package main

import (
	"github.com/landscaper-nix/landscaper/providers/sdk"
	sshkeypair "github.com/landscaper-nix/landscaper/providers/ssh-keypair"
)

func main() {
	sdk.Serve(sshkeypair.Provider())
}
