package pullsecret

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func key(t *testing.T) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	return sshPub, pem.EncodeToMemory(block)
}

func TestSealOpen(t *testing.T) {
	pub, priv := key(t)
	_, otherPriv := key(t)
	sealed, err := Seal(pub, []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatal("the sealed secret holds the plaintext")
	}
	id, err := Identity(priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(id, sealed)
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("open: %q, %v", got, err)
	}
	other, err := Identity(otherPriv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(other, sealed); err == nil {
		t.Fatal("another host key opened the secret")
	}
}

func TestCheckPath(t *testing.T) {
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{"/run/keys/db", true},
		{"/etc/secret.conf", true},
		{"relative/x", false},
		{"/run/../etc/x", false},
		{"/", false},
		{"/nix/store/abc-secret", false},
		{"/nix", false},
		{"/run/a\nb", false},
	} {
		if err := CheckPath(c.path); (err == nil) != c.ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", c.path, err, c.ok)
		}
	}
}

// TestRoleSecrets: a role's secret opens with its token, alone or beside
// the host key's identity, and with nothing else.
func TestRoleSecrets(t *testing.T) {
	const token = "a-role-token-0123456789"
	sealed, err := SealForRole(token, []byte("role secret"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "role secret") || strings.Contains(sealed, token) {
		t.Fatal("the sealed secret holds the plaintext or the token")
	}
	_, priv := key(t)
	hostID, err := Identity(priv)
	if err != nil {
		t.Fatal(err)
	}
	roleID, err := RoleIdentity(token)
	if err != nil {
		t.Fatal(err)
	}
	wrongRole, err := RoleIdentity(token + "x")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(hostID, sealed, roleID); err != nil || string(got) != "role secret" {
		t.Fatalf("open with the host key and the role's token: %q, %v", got, err)
	}
	if got, err := Open(roleID, sealed); err != nil || string(got) != "role secret" {
		t.Fatalf("open with the role's token: %q, %v", got, err)
	}
	if _, err := Open(hostID, sealed); err == nil {
		t.Fatal("the host key alone opened a role's secret")
	}
	if _, err := Open(hostID, sealed, wrongRole); err == nil {
		t.Fatal("another token opened the role's secret")
	}
}
