// Package nixcache is what a Nix binary cache serves, written in Go: the
// signing keys in Nix's "name:base64" form, narinfo documents and their
// signatures, and the store paths' metadata and NARs read from the local
// store through the real nix.
package nixcache

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretKey is a binary cache signing key, as `nix-store
// --generate-binary-cache-key` makes them.
type SecretKey struct {
	// Name is the key's name; signatures and the public key carry it.
	Name string
	Key  ed25519.PrivateKey
}

// GenerateKey makes a new signing key with the given name.
func GenerateKey(name string) (SecretKey, error) {
	if err := checkKeyName(name); err != nil {
		return SecretKey{}, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SecretKey{}, fmt.Errorf("generate cache key: %w", err)
	}
	return SecretKey{Name: name, Key: priv}, nil
}

func checkKeyName(name string) error {
	if name == "" || strings.ContainsAny(name, ": \t\r\n") {
		return fmt.Errorf("cache key name %q: want a non-empty name without colons or spaces", name)
	}
	return nil
}

// ParseSecretKey reads a key in Nix's secret key form,
// "name:base64(64-byte ed25519 private key)".
func ParseSecretKey(s string) (SecretKey, error) {
	name, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return SecretKey{}, errors.New("cache secret key: want name:base64")
	}
	if err := checkKeyName(name); err != nil {
		return SecretKey{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return SecretKey{}, fmt.Errorf("cache secret key %s: want %d bytes in base64", name, ed25519.PrivateKeySize)
	}
	return SecretKey{Name: name, Key: ed25519.PrivateKey(raw)}, nil
}

// String is the key in Nix's secret key form. It is the secret itself:
// write it only to a file of mode 0600.
func (k SecretKey) String() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key)
}

// Public is the public key in Nix's form, "name:base64(32 bytes)", as
// trusted-public-keys takes it.
func (k SecretKey) Public() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key.Public().(ed25519.PublicKey))
}

// Sign signs a narinfo fingerprint and returns the signature in Nix's form,
// "name:base64(signature)", as a narinfo's Sig line carries it.
func (k SecretKey) Sign(fingerprint string) string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, []byte(fingerprint)))
}

// Verify checks a signature in Nix's form against a public key in Nix's
// form: the names must match and the signature must be the key's.
func Verify(publicKey, fingerprint, sig string) error {
	pname, pb64, ok := strings.Cut(publicKey, ":")
	sname, sb64, ok2 := strings.Cut(sig, ":")
	if !ok || !ok2 {
		return errors.New("verify cache signature: want name:base64 for key and signature")
	}
	if pname != sname {
		return fmt.Errorf("verify cache signature: signed by %q, not %q", sname, pname)
	}
	pub, err := base64.StdEncoding.DecodeString(pb64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify cache signature: public key %s is not %d bytes of base64", pname, ed25519.PublicKeySize)
	}
	raw, err := base64.StdEncoding.DecodeString(sb64)
	if err != nil {
		return fmt.Errorf("verify cache signature: %w", err)
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), []byte(fingerprint), raw) {
		return errors.New("verify cache signature: bad signature")
	}
	return nil
}
