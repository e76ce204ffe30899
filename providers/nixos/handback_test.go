package nixos_test

import (
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestReplacementDeletes: the deletes that begin a replacement (the engine
// sets Replacing) hand a machine back to its installer, plain deletes
// forget. nixos.host-key's replacement removes the installation record
// (here the machine does not answer, so it is left to be power-cycled:
// a reachable one is rebooted, which landscaper/vmtest checks on a real
// VM); nixos.install's replacement keeps the record until the new
// installation writes it, its plain delete removes it.
func TestReplacementDeletes(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, nixos.Provider())
	login := newKeyPair(t)
	hostKey := newKeyPair(t).Public
	for _, tc := range []struct {
		name       string
		typ        string
		replacing  bool
		keepRecord bool
		logs       []string
	}{
		{"host-key deleted", "nixos.host-key", false, true, []string{"forgetting host key"}},
		{"host-key replaced", "nixos.host-key", true, false, []string{"removed ", "does not answer", "power-cycle it"}},
		{"install deleted", "nixos.install", false, false, []string{"removed ", "forgetting the installation"}},
		{"install replaced", "nixos.install", true, true, []string{"its installation record stays"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			record := bootentry.InstalledPath(t.TempDir(), "52:54:00:68:62:01")
			if err := bootentry.WriteInstalled(record, bootentry.Installed{Toplevel: "/nix/store/00000000000000000000000000000000-nixos-system", At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			in := map[string]any{"address": "127.0.0.1", "port": testhost.FreePort(t), "user": "root", "privateKey": login.Private, "bootInstalledRecord": record}
			out := map[string]any{"hostPublicKey": hostKey}
			switch tc.typ {
			case "nixos.host-key":
				in["expectedHostKey"], in["rotate"], in["hostKeyPath"], in["timeout"], in["bootRecord"] = newKeyPair(t).Public, true, "/etc/ssh/ssh_host_ed25519_key", 600, ""
				out["fingerprint"] = "SHA256:x"
			case "nixos.install":
				in["hostPublicKey"], in["toplevel"] = hostKey, "/nix/store/00000000000000000000000000000000-nixos-system"
				out["toplevel"], out["installedAt"] = in["toplevel"], time.Now().UTC().Format(time.RFC3339)
			}
			prior := &resource.State{Inputs: resource.Values{JSON: h.JSON(in)}, Outputs: resource.Values{JSON: h.JSON(out)}}
			var ev *sdktest.Events
			if tc.replacing {
				ev = h.DeleteReplacing(tc.typ, prior)
			} else {
				ev = h.Delete(tc.typ, prior)
			}
			logs := strings.Join(ev.Logs, "\n")
			for _, want := range tc.logs {
				if !strings.Contains(logs, want) {
					t.Errorf("the delete's log lacks %q:\n%s", want, logs)
				}
			}
			_, err := bootentry.ReadInstalled(record)
			if kept := err == nil; kept != tc.keepRecord {
				t.Errorf("installation record kept: %v, want %v (%v)", kept, tc.keepRecord, err)
			}
		})
	}
}

// TestHostKeySealedRecord: a host-key member whose boot archive was sealed
// (its temporary key was replaced once) fails at once, saying how to start
// a new installer session, instead of waiting for an installer that can
// no longer get the key.
func TestHostKeySealedRecord(t *testing.T) {
	t.Parallel()
	b := newBootNet(t)
	if err := bootentry.Seal(b.version.FetchDir(), time.Now()); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, testhost.Options{})
	hk := f.conn()
	hk["expectedHostKey"] = f.host.HostPublicKey()
	hk["bootRecord"] = b.version.FetchDir()
	_, diags, ev := f.create(t, "nixos.host-key", hk)
	if !diags.HasError() {
		t.Fatal("a host-key member with a sealed boot archive succeeded")
	}
	msg := diags.Err().Error()
	for _, want := range []string{"was sealed at", "--replace", "installerHostKey"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if logs := strings.Join(ev.Logs, "\n"); strings.Contains(logs, "presents the expected host key") {
		t.Errorf("it connected to the host although the archive was sealed:\n%s", logs)
	}
}
