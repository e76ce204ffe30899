// Package local is Landscaper's "local" provider: resources on the machine
// that runs the engine. It has two types: local.file, a file with given
// contents and mode, and local.exec, a command run on create and update
// (and optionally another on delete).
package local

import (
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// Version is the provider's version, reported in its schema.
const Version = "0.1.0"

// Provider returns the local provider with its types "file" and "exec".
func Provider() *sdk.Provider {
	return &sdk.Provider{
		Name:    "local",
		Version: Version,
		Types: map[string]sdk.Resource{
			"file": fileType(),
			"exec": execType(),
		},
	}
}
