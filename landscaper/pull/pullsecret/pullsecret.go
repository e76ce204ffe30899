// Package pullsecret seals the secrets of a pulled host to its SSH host
// key with age (ssh-ed25519 recipients), so the pull directory and the
// server hold them only encrypted, and opens them on the host.
package pullsecret

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
)

// Seal encrypts plaintext to the host key and returns it armored.
func Seal(hostKey ssh.PublicKey, plaintext []byte) (string, error) {
	r, err := agessh.NewEd25519Recipient(hostKey)
	if err != nil {
		return "", fmt.Errorf("seal a secret to the host key: %w", err)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return "", fmt.Errorf("seal a secret to the host key: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return "", fmt.Errorf("seal a secret to the host key: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("seal a secret to the host key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("seal a secret to the host key: %w", err)
	}
	return buf.String(), nil
}

// Identity reads the host's private key (OpenSSH form, unencrypted) as
// the age identity that opens what Seal sealed to its public half.
func Identity(privateKey []byte) (age.Identity, error) {
	id, err := agessh.ParseIdentity(privateKey)
	if err != nil {
		return nil, fmt.Errorf("read the host key as an age identity: %w", err)
	}
	return id, nil
}

// Open decrypts an armored secret with the host's identity.
func Open(id age.Identity, sealed string) ([]byte, error) {
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(sealed)), id)
	if err != nil {
		return nil, fmt.Errorf("open a secret with the host key: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("open a secret with the host key: %w", err)
	}
	return b, nil
}

// CheckPath says what is wrong with a secret's path on the host, or
// nothing: it must be absolute and clean, and outside the Nix store
// (which every user can read).
func CheckPath(p string) error {
	switch {
	case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
		return fmt.Errorf("%q: want an absolute, clean path of a file such as /run/keys/db-password", p)
	case p == "/nix" || strings.HasPrefix(p, "/nix/"):
		return fmt.Errorf("%q: secrets are never written under /nix (the store is readable by every user)", p)
	case strings.ContainsAny(p, "\x00\n"):
		return fmt.Errorf("%q: holds a NUL or a newline", p)
	}
	return nil
}
