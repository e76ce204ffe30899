// Command landscaper-provider-local serves the local provider (local.file,
// local.exec) to the Landscaper engine. It is started by the engine, not by
// hand.
package main

import (
	"github.com/landscaper-nix/landscaper/providers/local"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

func main() {
	sdk.Serve(local.Provider())
}
