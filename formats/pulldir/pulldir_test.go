package pulldir

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func hostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPublishCountsGenerations(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	key := hostKey(t)
	id := HostID(key)
	if d.Known(id) {
		t.Fatal("known before anything was published")
	}
	for want := int64(1); want <= 3; want++ {
		got, err := d.Publish(key, Desired{Toplevel: fmt.Sprintf("/nix/store/x-%d", want)})
		if err != nil {
			t.Fatal(err)
		}
		back, ok, err := d.Desired(id)
		if err != nil || !ok || got.Generation != want || back.Generation != want || back.Toplevel != got.Toplevel {
			t.Fatalf("publish %d: got %+v, read %+v (%v %v)", want, got, back, ok, err)
		}
	}
	if !d.Known(id) {
		t.Fatal("not known after publishing")
	}
	if err := d.Forget(id); err != nil || d.Known(id) {
		t.Fatalf("forget: %v, known %v", err, d.Known(id))
	}
}

func TestReportsKeepTheLast(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	key := hostKey(t)
	if _, err := d.Publish(key, Desired{}); err != nil {
		t.Fatal(err)
	}
	id := HostID(key)
	for i := 1; i <= KeepReports+5; i++ {
		if err := d.AddReport(id, Report{Generation: int64(i), Result: ResultActivated}); err != nil {
			t.Fatal(err)
		}
	}
	reports, err := d.Reports(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != KeepReports || reports[0].Generation != KeepReports+5 || reports[len(reports)-1].Generation != 6 {
		t.Fatalf("kept %d reports, newest %d, oldest %d", len(reports), reports[0].Generation, reports[len(reports)-1].Generation)
	}
}

func TestClaimNonce(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	id := HostID(hostKey(t))
	now := time.Now()
	for _, c := range []struct {
		name, id, nonce string
		want, wantErr   bool
	}{
		{"first use", id, "0123456789abcdef0123456789abcdef", true, false},
		{"second use", id, "0123456789abcdef0123456789abcdef", false, false},
		{"other nonce", id, "fedcba9876543210fedcba9876543210", true, false},
		{"bad id", "../x", "00", false, true},
		{"bad nonce", id, "../x", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.ClaimNonce(c.id, c.nonce, now, 2*time.Minute)
			if got != c.want || (err != nil) != c.wantErr {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}
