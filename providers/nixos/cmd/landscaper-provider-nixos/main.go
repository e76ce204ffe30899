// Command landscaper-provider-nixos serves the nixos provider
// (nixos.host-key, nixos.system) to the Landscaper engine. It is started by
// the engine, not by hand.
package main

import (
	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

func main() {
	sdk.Serve(nixos.Provider())
}
