// Package sshkeypair is Landscaper's "ssh-keypair" provider. Its one
// resource type, ssh-keypair.keypair, generates an SSH key pair (ed25519,
// ecdsa or rsa) once, keeps it for as long as the resource lives, and offers
// it as an authorized_keys line, an OpenSSH private key (a sensitive output)
// and a SHA256 fingerprint.
package sshkeypair

import (
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// Name is the provider's name: its types are addressed as "ssh-keypair.T".
const Name = "ssh-keypair"

// Version is the provider's version, reported in its schema.
const Version = "0.1.0"

// Provider returns the ssh-keypair provider with its type "keypair".
func Provider() *sdk.Provider {
	return &sdk.Provider{
		Name:    Name,
		Version: Version,
		Types: map[string]sdk.Resource{
			"keypair": keypairType(),
		},
	}
}
