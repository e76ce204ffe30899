package bootentry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A machine installed on its disks must not boot the installer again
// although the network stays first in its boot order. The installation
// (nixos.install) records it beside the entries, before it reboots the
// machine:
//
//	installed/<mac>.json   {"toplevel": ..., "at": ...}
//
// and the boot server then answers the machine's script with one that
// leaves iPXE for the next boot device, its disk. Removing the record (the
// installation deleted or replaced) sends the machine to its entry again.

// Installed is the record of a machine installed on its disks.
type Installed struct {
	Toplevel string    `json:"toplevel"`
	At       time.Time `json:"at"`
}

// InstalledPath is where the record of mac's installation is kept under
// dir.
func InstalledPath(dir, mac string) string {
	return filepath.Join(dir, "installed", FileName(mac)+".json")
}

// Installed returns the record of mac's installation, or ErrNotFound.
func (s Store) Installed(mac string) (*Installed, error) {
	mac, err := NormalizeMAC(mac)
	if err != nil {
		return nil, err
	}
	return ReadInstalled(InstalledPath(s.Dir, mac))
}

// ReadInstalled reads an installation record, or ErrNotFound.
func ReadInstalled(path string) (*Installed, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read installation record: %w", err)
	}
	defer f.Close()
	var in Installed
	if err := json.NewDecoder(f).Decode(&in); err != nil {
		return nil, fmt.Errorf("read installation record %s: %w", path, err)
	}
	return &in, nil
}

// WriteInstalled writes an installation record at path (InstalledPath),
// atomically, creating its directory.
func WriteInstalled(path string, in Installed) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write installation record: %w", err)
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := writeSynced(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write installation record %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write installation record %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// RemoveInstalled removes an installation record; one that is gone is no
// error.
func RemoveInstalled(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove installation record %s: %w", path, err)
	}
	return nil
}
