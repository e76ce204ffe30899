// Command landscaper plans and applies Landscaper deployments.
package main

import (
	"os"

	"github.com/landscaper-nix/landscaper/landscaper/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.System()))
}
