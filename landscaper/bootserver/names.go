package bootserver

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// kind is what a client asked for.
type kind int

const (
	kindBootScript    kind = iota + 1 // boot.ipxe
	kindMachineScript                 // machine/<mac>.ipxe
	kindKernel                        // v/<mac>/<version>/kernel
	kindInitrd                        // v/<mac>/<version>/initrd/<n>
	kindExtra                         // v/<mac>/<version>/extra.cpio
	kindIPXE                          // undionly.kpxe, ipxe.efi, snponly.efi
)

// ipxeBinaries are the iPXE programs served from the iPXE directory. Only
// these names are ever joined to that directory.
var ipxeBinaries = map[string]bool{
	"undionly.kpxe": true, // BIOS
	"ipxe.efi":      true, // UEFI, with iPXE's own NIC drivers
	"snponly.efi":   true, // UEFI, through the firmware's network stack
}

// request is a client's file name, parsed. A client name is never used as
// a path: it is taken apart into these fields and the files are found
// through the boot entries.
type request struct {
	kind kind
	// mac is the normalised MAC for machine scripts and version files.
	mac string
	// version is the version ID for version files.
	version string
	// index is the initrd's position for kindInitrd.
	index int
	// binary is the iPXE binary's name for kindIPXE.
	binary string
}

var (
	// errBadName is a name no client should send: traversal, odd bytes,
	// empty segments. TFTP answers "access violation", HTTP 400.
	errBadName = errors.New("access violation")
	// errUnknownName is a well-formed name the server does not serve.
	errUnknownName = errors.New("file not found")
)

// maxNameLen bounds the names worth looking at; the longest real one
// (v/<mac>/<version>/initrd/<n>) is well under it.
const maxNameLen = 200

var versionRe = regexp.MustCompile(`^[0-9a-f]{20}$`)

// parseName parses a name a client asked for, over TFTP or HTTP (one
// leading "/" is ignored). Anything but the names the server serves is an
// error: errBadName for names that try to escape or hold odd bytes,
// errUnknownName for the rest.
func parseName(raw string) (request, error) {
	name := strings.TrimPrefix(raw, "/")
	if name == "" || len(name) > maxNameLen {
		return request{}, errUnknownName
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return request{}, errBadName
		}
	}
	if strings.Contains(name, "..") {
		return request{}, errBadName
	}
	segs := strings.Split(name, "/")
	for _, s := range segs {
		if s == "" || s == "." {
			return request{}, errBadName
		}
	}
	switch {
	case len(segs) == 1 && segs[0] == "boot.ipxe":
		return request{kind: kindBootScript}, nil
	case len(segs) == 1 && ipxeBinaries[segs[0]]:
		return request{kind: kindIPXE, binary: segs[0]}, nil
	case len(segs) == 2 && segs[0] == "machine" && strings.HasSuffix(segs[1], ".ipxe"):
		mac, err := bootentry.NormalizeKey(strings.TrimSuffix(segs[1], ".ipxe"))
		if err != nil {
			return request{}, errUnknownName
		}
		return request{kind: kindMachineScript, mac: mac}, nil
	case len(segs) >= 4 && segs[0] == "v":
		return parseVersionName(segs[1:])
	}
	return request{}, errUnknownName
}

// parseVersionName parses <mac>/<version>/<file> of a version's file.
func parseVersionName(segs []string) (request, error) {
	mac, err := bootentry.NormalizeKey(segs[0])
	if err != nil || !versionRe.MatchString(segs[1]) {
		return request{}, errUnknownName
	}
	r := request{mac: mac, version: segs[1]}
	switch rest := segs[2:]; {
	case len(rest) == 1 && rest[0] == "kernel":
		r.kind = kindKernel
	case len(rest) == 1 && rest[0] == bootentry.ExtraName:
		r.kind = kindExtra
	case len(rest) == 2 && rest[0] == "initrd":
		n, ok := parseIndex(rest[1])
		if !ok {
			return request{}, errUnknownName
		}
		r.kind, r.index = kindInitrd, n
	default:
		return request{}, errUnknownName
	}
	return r, nil
}

// parseIndex accepts a decimal initrd index in its canonical form (no sign,
// no leading zeros), so every initrd has exactly one name.
func parseIndex(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 9999 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// nameByte reports whether b may appear in a name the server serves:
// letters, digits and ". _ - : /". Everything else (control bytes, NUL,
// backslash, '%', spaces, non-ASCII) marks a name no client of ours sends.
func nameByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	case b == '.', b == '_', b == '-', b == ':', b == '/':
		return true
	}
	return false
}

// versionFileName is the name of one of a version's files, relative to
// the server's root: v/<mac>/<version>/<file>.
func versionFileName(mac, version, file string) string {
	return "v/" + bootentry.FileName(mac) + "/" + version + "/" + file
}
