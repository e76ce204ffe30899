package nixos_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestAddressesAndLogins: the whole path (nixos.host-key waits for the
// installer's key and rotates it; nixos.system copies and activates a
// system pinned to the new key; an upgrade whose health check fails is
// rolled back; nixos.install's copy into a store under /mnt) works on the
// IPv6 loopback address ::1, and as a login user other than root whose
// commands, and nix copy, go through "sudo -n". The host's sshd log shows
// every login was that user's, from that address.
func TestAddressesAndLogins(t *testing.T) {
	t.Parallel()
	sudoUser := testhost.User{Name: "deploy", Sudo: true}
	cases := []struct {
		name    string
		address string
		user    string
		users   []testhost.User
	}{
		{name: "root on ::1", address: "::1", user: "root"},
		{name: "sudo user on 127.0.0.1", address: "127.0.0.1", user: "deploy", users: []testhost.User{sudoUser}},
		{name: "sudo user on ::1", address: "::1", user: "deploy", users: []testhost.User{sudoUser}},
	}
	v1 := testhost.BuildSystem(t, testhost.System{Name: "logins-v1", Healthy: true})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "logins-v2"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			installerKey := newKeyPair(t)
			f := newFixture(t, testhost.Options{Address: tc.address, HostKey: installerKey.Private, Users: tc.users})
			if f.host.Address != tc.address {
				t.Fatalf("the stand-in host listens on %s, want %s", f.host.Address, tc.address)
			}

			// nixos.host-key: wait, rotate.
			hk := f.connAs(tc.user)
			hk["expectedHostKey"] = installerKey.Public
			hk["timeout"] = 30
			keyState, diags, ev := f.create(t, hostKeyType, hk)
			if diags.HasError() {
				t.Fatalf("host-key: %v\nlog: %q", diags.Err(), ev.Logs)
			}
			rotated := outputString(t, keyState, "hostPublicKey")
			if rotated == "" || rotated == installerKey.Public || !strings.HasPrefix(f.host.HostPublicKey(), rotated) {
				t.Fatalf("hostPublicKey %q; the host has %q on disk; want a new key, the same", rotated, f.host.HostPublicKey())
			}
			if r := f.h.Read(hostKeyType, keyState); !r.Exists || r.Diagnostics.HasError() {
				t.Fatalf("Read after rotation: exists=%v %v", r.Exists, r.Diagnostics.Err())
			}

			// nixos.system: copy and activate, with a health check.
			in := f.connAs(tc.user)
			in["hostPublicKey"] = rotated
			in["toplevel"] = v1
			in["healthChecks"] = []any{map[string]any{"command": "test -e /run/current-system/healthy"}}
			sys, diags, ev := f.create(t, systemType, in)
			if diags.HasError() {
				t.Fatalf("system: %v\nlog: %q", diags.Err(), ev.Logs)
			}
			if cur, prof, boot := f.host.CurrentSystem(), f.host.ProfileSystem(), f.host.BootDefault(); cur != v1 || prof != v1 || boot != v1 {
				t.Errorf("after the deployment: current %q, profile %q, boot default %q; want %s for all", cur, prof, boot, v1)
			}
			if acts := f.host.Activations(); len(acts) != 2 || acts[0] != v1+" test" || acts[1] != v1+" boot" {
				t.Errorf("activations %q, want test then boot of %s", acts, v1)
			}
			// The host ran no system before (no /run/current-system).
			if prev, cur := outputString(t, sys, "previous"), outputString(t, sys, "current"); prev != "" || cur != v1 {
				t.Errorf("outputs previous %q, current %q; want \"\" and %s", prev, cur, v1)
			}

			// An upgrade whose health check fails is rolled back.
			up := f.connAs(tc.user)
			up["hostPublicKey"] = rotated
			up["toplevel"] = v2
			up["healthChecks"] = []any{map[string]any{"command": "test -e /run/current-system/healthy", "retries": 1, "interval": 0.1}}
			_, diags, ev = f.update(t, systemType, sys, up)
			if !diags.HasError() {
				t.Fatalf("an upgrade failing its health check succeeded; log %q", ev.Logs)
			}
			msg := diags.Err().Error()
			for _, want := range []string{"health checks failed", "rolled back", v1} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q:\n%s", want, msg)
				}
			}
			if cur, prof, boot := f.host.CurrentSystem(), f.host.ProfileSystem(), f.host.BootDefault(); cur != v1 || prof != v1 || boot != v1 {
				t.Errorf("after the rollback: current %q, profile %q, boot default %q; want %s for all", cur, prof, boot, v1)
			}
			if acts := f.host.Activations(); countLines(acts, v2+" test") != 1 || countLines(acts, v1+" test") != 2 {
				t.Errorf("activations %q, want v2 tested once and v1 twice (deployment, rollback)", acts)
			}

			// nixos.install's copy: into a store rooted elsewhere.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			target := remote.Target{Address: tc.address, Port: f.host.Port, User: tc.user, PrivateKey: f.login.Private, HostKey: rotated, Sudo: tc.user != "root"}
			if err := remote.Copy(ctx, target, []string{v2}, remote.CopyOptions{RemoteStore: "local?root=/run/mnt"}); err != nil {
				t.Fatalf("copy into /run/mnt's store: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(f.host.Dir, "run", "mnt", v2)); err != nil {
				t.Errorf("the store under /run/mnt lacks %s: %v", v2, err)
			}

			log := f.host.SSHDLog()
			accepted := "Accepted publickey for " + tc.user + " from " + tc.address + " "
			if n := strings.Count(log, accepted); n < 5 {
				t.Errorf("sshd logged %d logins %q..., want at least one for each step:\n%s", n, accepted, log)
			}
			if n := strings.Count(log, "Accepted publickey for "); n != strings.Count(log, accepted) {
				t.Errorf("sshd logged logins of another user or from another address than %q:\n%s", accepted, log)
			}
		})
	}
}

// TestLoginWithoutRoot: a login user that cannot run commands as root
// (no passwordless sudo; or sudo = false for a user other than root) is
// refused with an error that says so, names the user and the host, and
// says nothing was changed, before any change: the host keeps its host
// key and system, nothing is copied, the boot archive is not sealed, and
// nixos.install's disk script never runs.
func TestLoginWithoutRoot(t *testing.T) {
	t.Parallel()
	installerKey := newKeyPair(t)
	f := newFixture(t, testhost.Options{HostKey: installerKey.Private, Users: []testhost.User{{Name: "nosudo"}, {Name: "deploy", Sudo: true}}})
	v1 := testhost.BuildSystem(t, testhost.System{Name: "noroot-v1", Healthy: true})
	canary := buildCanary(t, "/run/disko-ran")
	hostPort := net.JoinHostPort(f.host.Address, strconv.Itoa(f.host.Port))

	// A clean boot record: the machine got its archive, nobody else asked.
	b := newBootNet(t)
	b.boot(machineAddr, "http", false)

	refusedSudo := []string{"nosudo@" + hostPort + ` cannot run commands as root with "sudo -n"`, "sudo: a password is required", "nosudo needs passwordless sudo", "nothing was changed"}
	cases := []struct {
		name   string
		typ    string
		inputs map[string]any
		want   []string
	}{
		{name: "host-key rotation without sudo", typ: hostKeyType,
			inputs: map[string]any{"user": "nosudo", "expectedHostKey": installerKey.Public, "timeout": 30, "bootRecord": b.version.FetchDir()},
			want:   slices.Concat(refusedSudo, []string{"rotate the host key", "the boot archive was not sealed"})},
		{name: "system without sudo", typ: systemType,
			inputs: map[string]any{"user": "nosudo", "hostPublicKey": installerKey.Public, "toplevel": v1},
			want:   slices.Concat(refusedSudo, []string{"pre-flight failed"})},
		{name: "system with sudo = false", typ: systemType,
			inputs: map[string]any{"user": "deploy", "sudo": false, "hostPublicKey": installerKey.Public, "toplevel": v1},
			want:   []string{"pre-flight failed", "commands on deploy@" + hostPort + " run as user ID", "not as root", "nothing was changed"}},
		{name: "install without sudo", typ: installType,
			inputs: map[string]any{"user": "nosudo", "hostPublicKey": installerKey.Public, "toplevel": v1, "diskoScript": canary},
			want:   slices.Concat(refusedSudo, []string{"safety pre-flight failed", "nothing was changed on the machine"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := f.conn()
			for k, v := range tc.inputs {
				in[k] = v
			}
			st, diags, ev := f.create(t, tc.typ, in)
			if st != nil || !diags.HasError() {
				t.Fatalf("went ahead without root; log %q", ev.Logs)
			}
			msg := diags.Err().Error()
			t.Logf("the error: %s", msg)
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "PRIVATE KEY") {
				t.Errorf("the error shows the login key:\n%s", msg)
			}
		})
	}

	// A replacement of the host-key member would hand the machine back to
	// its installer: it is refused before the installation record goes.
	t.Run("host-key hand-back without sudo", func(t *testing.T) {
		record := bootentry.InstalledPath(t.TempDir(), "52:54:00:6e:6f:01")
		if err := bootentry.WriteInstalled(record, bootentry.Installed{Toplevel: v1, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		in := f.connAs("nosudo")
		in["expectedHostKey"], in["rotate"], in["hostKeyPath"], in["timeout"], in["bootRecord"], in["bootInstalledRecord"] = installerKey.Public, true, "/etc/ssh/ssh_host_ed25519_key", 600, "", record
		out := map[string]any{"hostPublicKey": installerKey.Public, "fingerprint": remote.Fingerprint(installerKey.Public)}
		prior := resource.State{Inputs: resource.Values{JSON: f.h.JSON(in)}, Outputs: resource.Values{JSON: f.h.JSON(out)}}
		ev := &sdktest.Events{}
		r, err := f.h.Provider.Delete(context.Background(), resource.DeleteRequest{Type: hostKeyType, Name: "test", Prior: prior, Replacing: true}, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Diagnostics.HasError() {
			t.Fatalf("the hand-back went ahead without root; log %q", ev.Logs)
		}
		msg := r.Diagnostics.Err().Error()
		for _, want := range []string{"hand " + hostPort + " back to its installer", `nosudo@` + hostPort + ` cannot run commands as root with "sudo -n"`, "the installation record stays"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the error does not say %q:\n%s", want, msg)
			}
		}
		if _, err := bootentry.ReadInstalled(record); err != nil {
			t.Errorf("the installation record was removed: %v", err)
		}
	})

	// Nothing changed on the host, nor in the boot record.
	if got := f.host.HostPublicKey(); !strings.HasPrefix(got, installerKey.Public) {
		t.Errorf("the host key changed: %q, want the installer's %q", got, installerKey.Public)
	}
	if at, sealed, err := bootentry.SealedAt(b.version.FetchDir()); err != nil || sealed {
		t.Errorf("the boot archive was sealed (at %v, %v)", at, err)
	}
	if f.host.HasPath(v1) || f.host.HasPath(canary) {
		t.Errorf("something was copied to the host: system %v, disk script %v", f.host.HasPath(v1), f.host.HasPath(canary))
	}
	if acts := f.host.Activations(); len(acts) != 0 || f.host.CurrentSystem() != "" {
		t.Errorf("something was activated: %q, current system %q", acts, f.host.CurrentSystem())
	}
	if out, err := f.host.Exec(context.Background(), "test -e /run/disko-ran && echo ran; ls -A /run/landscaper 2>/dev/null; true"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the disk script ran, or an activation was started: %q (%v)", out, err)
	}
	// The refusals were made by the host's sudo, for these users: the
	// logins got through.
	log := f.host.SSHDLog()
	for _, user := range []string{"nosudo", "deploy"} {
		if !strings.Contains(log, "Accepted publickey for "+user+" ") {
			t.Errorf("sshd never let %s in, so the refusal proves nothing:\n%s", user, log)
		}
	}
}
