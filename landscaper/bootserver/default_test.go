package bootserver

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// TestDefaultEntry: a machine without an entry of its own boots the
// default entry, whose extra archive (a role's enrollment token, say) is
// served to every such machine and written down; a machine with its own
// entry boots that one; without a default entry an unknown machine is
// sent on to its next boot device.
func TestDefaultEntry(t *testing.T) {
	f := newFixture(t, nil)
	const otherMAC = "52:54:00:aa:bb:cc"
	unknown := bootentry.ScriptPath(otherMAC)
	for _, p := range []string{"tftp", "http"} {
		body, err := curlFetch(t, machineAddr, f.url(p, unknown))
		if err != nil || !bytes.Contains(body, []byte("no boot entry")) {
			t.Fatalf("%s: an unknown machine without a default entry got %v:\n%s", p, err, body)
		}
	}

	token := []byte("the role's enrollment token\n")
	def := f.putEntry("Default", []byte("installer kernel"), [][]byte{[]byte("installer initrd")}, "console=ttyS0", token)
	if def.MAC != bootentry.DefaultKey {
		t.Fatalf("the default entry's key is %q", def.MAC)
	}
	own := f.putEntry(testMAC, []byte("own kernel"), nil, "", nil)

	if body, err := curlFetch(t, machineAddr, f.url("http", bootentry.ScriptPath(testMAC))); err != nil || !bytes.Contains(body, []byte(own.ID)) || bytes.Contains(body, []byte(def.ID)) {
		t.Fatalf("the machine with its own entry got %v:\n%s", err, body)
	}
	archive := versionFileName(def.MAC, def.ID, bootentry.ExtraName)
	for i, client := range []string{machineAddr, attackerAddr} {
		p := []string{"tftp", "http"}[i]
		body, err := curlFetch(t, client, f.url(p, unknown))
		if err != nil || !bytes.Contains(body, []byte(def.ID)) || !strings.Contains(string(body), "console=ttyS0") {
			t.Fatalf("%s: an unknown machine (%s) got %v, want the default entry's script:\n%s", p, client, err, body)
		}
		for _, name := range []string{versionFileName(def.MAC, def.ID, "kernel"), versionFileName(def.MAC, def.ID, "initrd/0")} {
			if _, err := curlFetch(t, client, f.url(p, name)); err != nil {
				t.Fatalf("%s: %s for %s: %v", p, name, client, err)
			}
		}
		got, err := curlFetch(t, client, f.url(p, archive))
		if err != nil || !bytes.Equal(got, token) {
			t.Fatalf("%s: the default entry's archive for %s: %q, %v", p, client, got, err)
		}
	}
	eventually(t, 10*time.Second, "both servings written down", func() bool {
		r := readRecord(t, def)
		return hasEvent(r, bootentry.EventServed, machineAddr) && hasEvent(r, bootentry.EventServed, attackerAddr) && r.Claim == nil
	})
	if l := f.logLines("default_entry=true"); len(l) < 2 {
		t.Errorf("the default entry's scripts are not logged as such:\n%s", f.logs.String())
	}
}
