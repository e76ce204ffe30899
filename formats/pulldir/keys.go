package pulldir

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/landscaper/pull/nixcache"
)

// CacheKeyName is the name of the binary cache keys pull directories
// make; hosts trust the key by its name and value (trusted-public-keys).
const CacheKeyName = "landscaper-pull-1"

// ServerKey loads the server's SSH signing key, making it (and server.pub)
// when the directory has none yet. Servers racing to make it agree on
// the first one written.
func (d Dir) ServerKey() (ssh.Signer, error) {
	priv, err := d.loadOrMake("server-key", func() ([]byte, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(k, "landscaper pull server")
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(block), nil
	})
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("pull dir: read server-key: %w", err)
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := d.ensurePublic("server.pub", pub); err != nil {
		return nil, err
	}
	return signer, nil
}

// CacheKey loads the binary cache's signing key, making it (and
// cache.pub) when the directory has none yet.
func (d Dir) CacheKey() (nixcache.SecretKey, error) {
	priv, err := d.loadOrMake("cache-key", func() ([]byte, error) {
		k, err := nixcache.GenerateKey(CacheKeyName)
		if err != nil {
			return nil, err
		}
		return []byte(k.String() + "\n"), nil
	})
	if err != nil {
		return nixcache.SecretKey{}, err
	}
	key, err := nixcache.ParseSecretKey(string(priv))
	if err != nil {
		return nixcache.SecretKey{}, fmt.Errorf("pull dir: read cache-key: %w", err)
	}
	if err := d.ensurePublic("cache.pub", []byte(key.Public()+"\n")); err != nil {
		return nixcache.SecretKey{}, err
	}
	return key, nil
}

// loadOrMake reads the private key file name, or makes it with mode 0600:
// written to a temporary file, then linked into place, so a concurrent
// maker's key is never overwritten (the loser reads the winner's).
func (d Dir) loadOrMake(name string, make func() ([]byte, error)) ([]byte, error) {
	p := filepath.Join(d.Path, name)
	if b, err := os.ReadFile(p); err == nil {
		return b, checkPrivate(p)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pull dir: read %s: %w", p, err)
	}
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return nil, fmt.Errorf("pull dir: %w", err)
	}
	data, err := make()
	if err != nil {
		return nil, fmt.Errorf("pull dir: make %s: %w", name, err)
	}
	tmp := filepath.Join(d.Path, "."+name+"."+randomHex(6))
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, fmt.Errorf("pull dir: write %s: %w", p, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pull dir: write %s: %w", p, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("pull dir: read %s: %w", p, err)
	}
	return b, nil
}

// checkPrivate refuses a private key file others can read.
func checkPrivate(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("pull dir: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("pull dir: %s has mode %04o: a private key must be readable by its owner only (chmod 0600)", p, st.Mode().Perm())
	}
	return nil
}

// ensurePublic writes a public half when it is missing or differs.
func (d Dir) ensurePublic(name string, content []byte) error {
	p := filepath.Join(d.Path, name)
	if b, err := os.ReadFile(p); err == nil && string(b) == string(content) {
		return nil
	}
	return writeFile(p, content, 0o644)
}
