package bootentry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Several deployments may write entries into one boot directory. Each
// MAC's entry has an owner, recorded beside it:
//
//	owners/<mac>.json   {"token": ..., "member": ..., "since": ...}
//
// The token is random, made when a member first writes the entry and kept
// in its outputs; a writer with another token is refused, so two
// deployments never overwrite (and prune) each other's versions. Writers
// hold an exclusive lock on .lock in the boot directory while they check
// and write. The boot server neither reads owners nor takes the lock.

// Owner is who wrote a MAC's entry.
type Owner struct {
	// Token identifies the writer; it is kept in the member's outputs.
	Token string `json:"token"`
	// Member names the member that holds the token, for messages.
	Member string    `json:"member"`
	Since  time.Time `json:"since"`
}

// OwnedError is returned when another owner holds a MAC's entry.
type OwnedError struct {
	MAC   string
	Dir   string
	Owner Owner
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("the boot entry of MAC %s in %s belongs to member %q of another deployment (since %s): one machine has one entry; remove that member from its deployment first, or, if that deployment is gone, delete %s",
		e.MAC, e.Dir, e.Owner.Member, e.Owner.Since.UTC().Format(time.RFC3339), filepath.Join(e.Dir, "owners", FileName(e.MAC)+".json"))
}

// NewToken makes a new owner token.
func NewToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make an owner token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (s Store) ownerPath(mac string) string {
	return filepath.Join(s.Dir, "owners", FileName(mac)+".json")
}

// Owner returns the owner of mac's entry, or ErrNotFound when none is
// recorded (an entry written before owners existed has none).
func (s Store) Owner(mac string) (*Owner, error) {
	mac, err := NormalizeKey(mac)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.ownerPath(mac), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read the owner of %s's entry: %w", mac, err)
	}
	defer f.Close()
	var o Owner
	if err := json.NewDecoder(f).Decode(&o); err != nil || o.Token == "" {
		return nil, fmt.Errorf("read the owner of %s's entry: %s is damaged: %v", mac, s.ownerPath(mac), err)
	}
	return &o, nil
}

// lock takes the boot directory's writer lock.
func (s Store) lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create boot directory: %w", err)
	}
	name := filepath.Join(s.Dir, ".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the boot directory's lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// checkOwner refuses when another token owns mac's entry; the caller
// holds the lock.
func (s Store) checkOwner(mac, token string) error {
	o, err := s.Owner(mac)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case o.Token != token:
		return &OwnedError{MAC: mac, Dir: s.Dir, Owner: *o}
	}
	return nil
}

// PutOwned is Put for the owner o: refused with an *OwnedError when
// another owner holds the MAC's entry; otherwise o becomes its owner.
func (s Store) PutOwned(e Entry, extra []byte, o Owner) (*Version, error) {
	mac, err := NormalizeKey(e.MAC)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.checkOwner(mac, o.Token); err != nil {
		return nil, err
	}
	if cur, err := s.Owner(mac); err == nil {
		o.Since = cur.Since
	}
	if o.Since.IsZero() {
		o.Since = time.Now().UTC()
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(s.ownerPath(mac)), 0o755); err != nil {
		return nil, fmt.Errorf("create owners directory: %w", err)
	}
	// Owner first: an entry is never without its owner.
	tmp := s.ownerPath(mac) + ".tmp"
	_ = os.Remove(tmp)
	if err := writeSynced(tmp, b, 0o644); err != nil {
		return nil, fmt.Errorf("record the owner of %s's entry: %w", mac, err)
	}
	if err := os.Rename(tmp, s.ownerPath(mac)); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("record the owner of %s's entry: %w", mac, err)
	}
	return s.Put(e, extra)
}

// DeleteOwned is Delete for the owner token: an entry another owner holds
// is left alone (an *OwnedError); an entry without a recorded owner is
// deleted.
func (s Store) DeleteOwned(mac, token string) error {
	mac, err := NormalizeKey(mac)
	if err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.checkOwner(mac, token); err != nil {
		return err
	}
	if err := s.Delete(mac); err != nil {
		return err
	}
	if err := os.Remove(s.ownerPath(mac)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the owner of %s's entry: %w", mac, err)
	}
	// Without its entry the machine gets no script but "no entry": its
	// installation record goes too.
	return RemoveInstalled(InstalledPath(s.Dir, mac))
}
