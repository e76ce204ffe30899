// Command landscaper-provider-testkit serves the testkit provider
// (testkit.item), a provider that misbehaves on request, for the engine's
// crash-safety tests. It is started by the engine, not by hand;
// testprovider.StartEnv in its environment makes it misbehave while it
// starts.
package main

import (
	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
)

func main() {
	testprovider.Serve()
}
