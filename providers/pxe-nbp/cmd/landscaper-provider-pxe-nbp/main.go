// Command landscaper-provider-pxe-nbp serves the pxe-nbp provider
// (pxe-nbp.entry, network boot entries for the landscaper boot server) to
// the Landscaper engine. It is started by the engine, not by hand.
package main

import (
	pxenbp "github.com/landscaper-nix/landscaper/providers/pxe-nbp"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

func main() {
	sdk.Serve(pxenbp.Provider())
}
