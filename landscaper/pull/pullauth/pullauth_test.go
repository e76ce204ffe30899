package pullauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/ssh"
)

func signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyResponse(t *testing.T) {
	server, other := signer(t), signer(t)
	body := []byte(`{"desired":null}`)
	sig, err := SignResponse(server, "host-a", "nonce-1", body)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, _ := SignResponse(other, "host-a", "nonce-1", body)
	for _, c := range []struct {
		name, host, nonce, header string
		body                      []byte
		ok                        bool
	}{
		{"as signed", "host-a", "nonce-1", sig, body, true},
		{"unsigned", "host-a", "nonce-1", "", body, false},
		{"another key", "host-a", "nonce-1", otherSig, body, false},
		{"for another host", "host-b", "nonce-1", sig, body, false},
		{"for another request", "host-a", "nonce-2", sig, body, false},
		{"body changed", "host-a", "nonce-1", sig, []byte(`{"desired":{}}`), false},
		{"garbage", "host-a", "nonce-1", "!!", body, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyResponse(server.PublicKey(), c.host, c.nonce, c.body, c.header)
			if (err == nil) != c.ok {
				t.Fatalf("got %v, want ok %v", err, c.ok)
			}
		})
	}
}

func TestParseServerKey(t *testing.T) {
	s := signer(t)
	line := string(ssh.MarshalAuthorizedKey(s.PublicKey()))
	if k, err := ParseServerKey(line); err != nil || string(k.Marshal()) != string(s.PublicKey().Marshal()) {
		t.Fatalf("key line: %v", err)
	}
	if _, err := ParseServerKey("/nonexistent/server.pub"); err == nil {
		t.Fatal("a missing file was accepted")
	}
}
