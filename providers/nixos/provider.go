// Package nixos is Landscaper's "nixos" provider: nixos.host-key waits for
// a new server's SSH, checks the host key it presents and rotates it;
// nixos.system copies a NixOS system's closure to a host and activates it
// safely: test first under a dead-man switch on the target, then health
// checks, then the boot entry, re-activating the previous system on any
// failure.
package nixos

import "github.com/landscaper-nix/landscaper/providers/sdk"

// Name is the provider's name: its types are addressed as "nixos.T".
const Name = "nixos"

// Version is the provider's version, reported in its schema.
const Version = "0.1.0"

// Provider returns the nixos provider.
func Provider() *sdk.Provider {
	pool := newConnPool()
	return &sdk.Provider{
		Name:    Name,
		Version: Version,
		Types: map[string]sdk.Resource{
			"host-key":  hostKeyType(),
			"system":    systemType(pool),
			"install":   installType(),
			"pull":      pullType(),
			"pull-role": pullRoleType(),
		},
	}
}
