// Command landscaper-provider-testkit serves the testkit provider
// (testkit.item), a provider that misbehaves on request, for the engine's
// crash-safety tests. It is started by the engine, not by hand.
package main

import (
	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

func main() {
	sdk.Serve(testprovider.Provider())
}
