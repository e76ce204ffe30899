// Command landscaper-provider-kv serves the kv provider to the Landscaper
// engine, which starts it; it is not run by hand.
package main

import (
	"example.com/landscaper-provider-kv/kv"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

func main() {
	sdk.Serve(kv.Provider())
}
