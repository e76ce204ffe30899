// Command landscaper-provider-nixos serves the nixos provider
// (nixos.host-key, nixos.system) to the Landscaper engine. It is started by
// the engine, not by hand.
package main

import (
	"os"

	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

func main() {
	// nix copy runs this program as its "ssh" (remote.Client.Copy).
	if remote.SSHShimRequested() {
		os.Exit(remote.RunSSHShim())
	}
	sdk.Serve(nixos.Provider())
}
