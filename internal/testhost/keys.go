package testhost

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// KeyPair is an ed25519 key pair in the forms the ssh-keypair provider
// gives: an OpenSSH private key and an authorized_keys line.
type KeyPair struct {
	Private, Public string
}

// NewKeyPair generates a key pair, for a login key or a host key.
func NewKeyPair(t testing.TB) KeyPair {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{Private: string(pem.EncodeToMemory(block)), Public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}
}
