// Package pxenbp is Landscaper's "pxe-nbp" provider: network boot entries
// for bare-metal machines. Its one type, pxe-nbp.entry, tells the
// landscaper boot server (landscaper serve) what one machine, known by its
// MAC address, boots over the network: a kernel, its initrds, a kernel
// command line, and files for that machine alone, appended to its initrd
// as an extra cpio archive built by the provider.
//
// Entries are written to a boot directory in the layout of package
// bootentry, which the boot server reads.
package pxenbp

import (
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// Version is the provider's version, reported in its schema.
const Version = "0.1.0"

// Name is the provider's name: its types are pxe-nbp.<type>.
const Name = "pxe-nbp"

// Provider returns the pxe-nbp provider with its type "entry".
func Provider() *sdk.Provider {
	return &sdk.Provider{
		Name:    Name,
		Version: Version,
		Types: map[string]sdk.Resource{
			"entry": entryType(),
		},
	}
}
