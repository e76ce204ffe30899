package bootserver

import (
	"errors"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// TestScriptPathContract: the script path the pxe-nbp provider reports
// (its scriptPath output) is a name this server serves, for that machine.
func TestScriptPathContract(t *testing.T) {
	for _, in := range []string{"52:54:00:12:34:56", "AA-BB-CC-DD-EE-FF", "0011.2233.4455"} {
		mac, err := bootentry.NormalizeMAC(in)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseName(bootentry.ScriptPath(mac))
		if err != nil || r.kind != kindMachineScript || r.mac != mac {
			t.Errorf("parseName(%q) = %+v, %v; want the script of %s", bootentry.ScriptPath(mac), r, err, mac)
		}
	}
}

func TestParseName(t *testing.T) {
	const ver = "0123456789abcdef0123"
	const mac = "52:54:00:12:34:56"
	tests := []struct {
		name string
		want request
		err  error
	}{
		{"boot.ipxe", request{kind: kindBootScript}, nil},
		{"/boot.ipxe", request{kind: kindBootScript}, nil},
		{"undionly.kpxe", request{kind: kindIPXE, binary: "undionly.kpxe"}, nil},
		{"/ipxe.efi", request{kind: kindIPXE, binary: "ipxe.efi"}, nil},
		{"snponly.efi", request{kind: kindIPXE, binary: "snponly.efi"}, nil},
		{"machine/52-54-00-12-34-56.ipxe", request{kind: kindMachineScript, mac: mac}, nil},
		{"machine/52:54:00:12:34:56.ipxe", request{kind: kindMachineScript, mac: mac}, nil},
		{"machine/525400123456.ipxe", request{kind: kindMachineScript, mac: mac}, nil},
		{"machine/5254.0012.3456.ipxe", request{kind: kindMachineScript, mac: mac}, nil},
		{"machine/01-52-54-00-12-34-56.ipxe", request{kind: kindMachineScript, mac: mac}, nil},
		{"machine/52-54-00-12-34-56.IPXE", request{}, errUnknownName},
		{"v/52-54-00-12-34-56/" + ver + "/kernel", request{kind: kindKernel, mac: mac, version: ver}, nil},
		{"v/52-54-00-12-34-56/" + ver + "/initrd/0", request{kind: kindInitrd, mac: mac, version: ver}, nil},
		{"v/52-54-00-12-34-56/" + ver + "/initrd/12", request{kind: kindInitrd, mac: mac, version: ver, index: 12}, nil},
		{"v/52-54-00-12-34-56/" + ver + "/extra.cpio", request{kind: kindExtra, mac: mac, version: ver}, nil},
		{"v/52-54-00-12-34-56/" + ver + "/initrd/01", request{}, errUnknownName},
		{"v/52-54-00-12-34-56/" + ver + "/initrd/-1", request{}, errUnknownName},
		{"v/52-54-00-12-34-56/" + ver + "/initrd/+1", request{}, errBadName},
		{"v/52-54-00-12-34-56/" + ver + "/initrd", request{}, errUnknownName},
		{"v/52-54-00-12-34-56/" + ver + "/entry.json", request{}, errUnknownName},
		{"v/52-54-00-12-34-56/0123/kernel", request{}, errUnknownName},
		{"v/52-54-00-12-34-56/" + ver + "/kernel/x", request{}, errUnknownName},
		{"v/nope/" + ver + "/kernel", request{}, errUnknownName},
		{"", request{}, errUnknownName},
		{"/", request{}, errUnknownName},
		{"pxelinux.0", request{}, errUnknownName},
		{"machine", request{}, errUnknownName},
		// Traversal and odd bytes.
		{"../etc/passwd", request{}, errBadName},
		{"//etc/passwd", request{}, errBadName},
		{"/etc/passwd", request{}, errUnknownName},
		{"v/../../x", request{}, errBadName},
		{"machine/../../x.ipxe", request{}, errBadName},
		{"machine/./52-54-00-12-34-56.ipxe", request{}, errBadName},
		{"machine//52-54-00-12-34-56.ipxe", request{}, errBadName},
		{"%2e%2e/boot.ipxe", request{}, errBadName},
		{"boot%2eipxe", request{}, errBadName},
		{`a\b`, request{}, errBadName},
		{`..\boot.ipxe`, request{}, errBadName},
		{"boot.ipxe\x00", request{}, errBadName},
		{"boot.ipxe\n", request{}, errBadName},
		{"boot.ipxe\x7f", request{}, errBadName},
		{"boot .ipxe", request{}, errBadName},
		{"boot.ipxe\u00e9", request{}, errBadName},
		{"boot.ipxe/", request{}, errBadName},
		{"...", request{}, errBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseName(tt.name)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("parseName(%q) error = %v, want %v", tt.name, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("parseName(%q) = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}
