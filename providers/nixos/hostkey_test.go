package nixos_test

import (
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// TestWrongHostKeyRefusedWithoutAuthenticating: a host presenting another
// key than the expected (or pinned) one is refused, the error shows both
// fingerprints, and sshd never saw an authentication attempt.
func TestWrongHostKeyRefusedWithoutAuthenticating(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testhost.Options{})
	other := newKeyPair(t)
	v1 := testhost.BuildSystem(t, testhost.System{Name: "v1"})
	presented := remote.Fingerprint(f.host.HostPublicKey())
	expected := remote.Fingerprint(other.Public)

	hk := f.conn()
	hk["expectedHostKey"] = other.Public
	hk["timeout"] = 30
	_, diags, _ := f.create(t, hostKeyType, hk)
	in := f.systemInputs(v1, nil)
	in["hostPublicKey"] = other.Public
	_, sysDiags, _ := f.create(t, systemType, in)
	for name, d := range map[string]error{"host-key": diags.Err(), "system": sysDiags.Err()} {
		if d == nil {
			t.Fatalf("%s: a host with the wrong key was accepted", name)
		}
		for _, want := range []string{presented, expected, "refused before authenticating"} {
			if !strings.Contains(d.Error(), want) {
				t.Errorf("%s: error does not show %q: %v", name, want, d)
			}
		}
	}
	log := f.host.SSHDLog()
	for _, sign := range []string{"publickey", "Accepted", "authenticating user", "Postponed"} {
		if strings.Contains(log, sign) {
			t.Errorf("sshd saw an authentication attempt (%q):\n%s", sign, log)
		}
	}
	if !strings.Contains(log, "Connection from 127.0.0.1") {
		t.Errorf("sshd log does not show the refused connections, so the check above proves nothing:\n%s", log)
	}
	if acts := f.host.Activations(); len(acts) != 0 || f.host.HasPath(v1) {
		t.Errorf("something reached the host: activations %q, has system %v", acts, f.host.HasPath(v1))
	}
}

// TestHostNeverUp: waiting for a host that never answers ends with an error
// once the timeout has passed.
func TestHostNeverUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testhost.Options{})
	hk := f.conn()
	hk["port"] = testhost.FreePort(t)
	hk["expectedHostKey"] = newKeyPair(t).Public
	hk["timeout"] = 2
	start := time.Now()
	_, diags, _ := f.create(t, hostKeyType, hk)
	if !diags.HasError() {
		t.Fatal("waiting for a host that is not there succeeded")
	}
	if msg := diags.Err().Error(); !strings.Contains(msg, "did not answer SSH") || !strings.Contains(msg, "connection refused") {
		t.Errorf("error does not say the host did not answer: %s", msg)
	}
	// A hang guard, not a timing assertion: the wait must end.
	if waited := time.Since(start); waited > 2*time.Minute {
		t.Errorf("waited %s for a 2 s timeout", waited)
	}
}

// TestReadHostKeyAfterReinstall: a host presenting another key than the
// recorded one (reinstalled: the installer's key again) reads as gone, so
// the next plan waits for it anew.
func TestReadHostKeyAfterReinstall(t *testing.T) {
	t.Parallel()
	installerKey := newKeyPair(t)
	f := newFixture(t, testhost.Options{HostKey: installerKey.Private})
	hk := f.conn()
	hk["expectedHostKey"] = installerKey.Public
	hk["rotate"] = false
	st, diags, _ := f.create(t, hostKeyType, hk)
	if diags.HasError() {
		t.Fatal(diags.Err())
	}
	if got := outputString(t, st, "hostPublicKey"); got != installerKey.Public {
		t.Fatalf("without rotate hostPublicKey = %q, want the expected key", got)
	}
	if r := f.h.Read(hostKeyType, st); !r.Exists {
		t.Fatalf("Read: the host presents the key, but it reads as gone: %v", r.Diagnostics)
	}
	hk["rotate"] = true
	if _, diags, _ := f.create(t, hostKeyType, hk); diags.HasError() {
		t.Fatal(diags.Err())
	}
	if r := f.h.Read(hostKeyType, st); r.Exists || r.Diagnostics.HasError() {
		t.Fatalf("Read after the key changed: exists=%v %v, want gone", r.Exists, r.Diagnostics)
	}
}
