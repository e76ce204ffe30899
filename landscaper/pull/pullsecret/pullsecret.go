// Package pullsecret seals the secrets of a pulled host to its SSH host
// key with age (ssh-ed25519 recipients), and a role's secrets to the
// role's enrollment token, so the pull directory and the server hold them
// only encrypted, and opens them on the host.
package pullsecret

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	return seal(r, plaintext)
}

func seal(r age.Recipient, plaintext []byte) (string, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err == nil {
		_, err = w.Write(plaintext)
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = aw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("seal a secret: %w", err)
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

// Open decrypts an armored secret with the host's identity, or with any
// of them (the host key's, its role's).
func Open(id age.Identity, sealed string, more ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(sealed)), append([]age.Identity{id}, more...)...)
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

// A role's secrets are sealed to its enrollment token: every machine
// that enrolls with the token can open them, and the pull directory (which
// keeps only the token's enrollment key) and the server cannot. The age
// passphrase is derived from the token, so it is as strong as the token;
// scrypt's work factor is low, as a passphrase of 256 derived bits needs
// no stretching.

// roleWorkFactor is scrypt's log2 N for role secrets.
const roleWorkFactor = 12

func rolePassphrase(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("landscaper-pull-v1 role secrets"))
	return hex.EncodeToString(m.Sum(nil))
}

// SealForRole encrypts plaintext to the role's token and returns it
// armored.
func SealForRole(token string, plaintext []byte) (string, error) {
	r, err := age.NewScryptRecipient(rolePassphrase(token))
	if err != nil {
		return "", fmt.Errorf("seal a secret to the role's token: %w", err)
	}
	r.SetWorkFactor(roleWorkFactor)
	return seal(r, plaintext)
}

// RoleIdentity is the age identity that opens what SealForRole sealed
// with the same token.
func RoleIdentity(token string) (age.Identity, error) {
	id, err := age.NewScryptIdentity(rolePassphrase(token))
	if err != nil {
		return nil, fmt.Errorf("the role's token as an age identity: %w", err)
	}
	id.SetMaxWorkFactor(roleWorkFactor)
	return id, nil
}
