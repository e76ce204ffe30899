package bootserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTraversalRefused asks, over TFTP and HTTP, for names that try to
// leave the served names, and checks that every one is refused and that
// the server opened no file but an entry's and the iPXE binaries: the
// canaries beside the boot directory are never opened.
func TestTraversalRefused(t *testing.T) {
	f := newFixture(t, nil)
	v := f.putEntry(testMAC, []byte("kernel"), [][]byte{[]byte("initrd")}, "", []byte("extra"))
	canaries := []string{
		filepath.Join(filepath.Dir(f.bootDir), "canary"), // ../canary from the boot directory
		filepath.Join(t.TempDir(), "canary"),
		filepath.Join(f.bootDir, "canary"),
	}
	for _, c := range canaries {
		if err := os.WriteFile(c, []byte("canary"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ver := "v/52-54-00-12-34-56/" + v.ID
	names := []string{
		"../etc/passwd",
		"/etc/passwd",
		"v/../../x",
		"%2e%2e/",
		"%2e%2e/canary",
		"%2e%2e%2fcanary",
		"..%2fcanary",
		`a\b`,
		`..\canary`,
		// A NUL ends a TFTP name on the wire, so pin/tftp hands the server
		// what comes before it; over HTTP it is in the request line.
		"../canary\x00boot.ipxe",
		"canary\x00",
		"\x00",
		"machine/../../x.ipxe",
		"machine/..%2f..%2fcanary.ipxe",
		"../canary",
		"../../canary",
		"canary",
		"./canary",
		"....//canary",
		"ipxe.efi/../canary",
		"ipxe.efi/../../canary",
		canaries[0],
		"/" + canaries[1],
		"file://" + canaries[1],
		ver + "/../../../../canary",
		ver + "/entry.json",
		ver + "/kernel/../../../canary",
		"entries/52-54-00-12-34-56",
		"versions/52-54-00-12-34-56/" + v.ID + "/entry.json",
		"versions/52-54-00-12-34-56/" + v.ID + "/extra.cpio",
		"boot.ipxe\n../canary",
		"boot.ipxe\r",
		"boot.ipxe\x1b",
		"..",
		".",
		"~/canary",
		"$HOME/canary",
		"machine/${mac}.ipxe",
	}
	for _, name := range names {
		if got, _, err := tftpGet(f.tftpAddr(), name, 0, false); err == nil {
			t.Errorf("TFTP %q: served %q", name, got)
		}
		target := "/" + name
		if strings.HasPrefix(name, "/") {
			target = name
		}
		if code := rawHTTP(t, f.srv.HTTPAddr().String(), target); code < 400 || code > 499 {
			t.Errorf("HTTP %q: status %d, want 4xx", name, code)
		}
	}
	// The server still serves what it should, after all that (the
	// machine's script first: the extra archive goes only to the client
	// that fetched it, this one).
	for _, name := range []string{"boot.ipxe", "machine/52-54-00-12-34-56.ipxe", ver + "/kernel", ver + "/initrd/0", ver + "/extra.cpio", "ipxe.efi"} {
		if _, _, err := tftpGet(f.tftpAddr(), name, 0, false); err != nil {
			t.Errorf("TFTP %s: %v", name, err)
		}
		if code := rawHTTP(t, f.srv.HTTPAddr().String(), "/"+name); code != 200 {
			t.Errorf("HTTP %s: status %d", name, code)
		}
	}

	allowed := map[string]bool{v.Kernel: true, v.Initrds[0]: true, v.ExtraPath(): true}
	for name := range ipxeBinaries {
		allowed[filepath.Join(f.ipxeDir, name)] = true
	}
	opened := f.opened.all()
	if len(opened) == 0 {
		t.Fatal("the opener saw nothing: the test does not watch the server")
	}
	for _, p := range opened {
		if !allowed[p] {
			t.Errorf("the server opened %s", p)
		}
	}
}
