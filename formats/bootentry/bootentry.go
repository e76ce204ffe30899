// Package bootentry is the on-disk contract between the pxe-nbp provider,
// which writes network boot entries, and the landscaper boot server, which
// serves them. An entry belongs to one machine (by MAC address) and names
// one kernel, its initrds, an optional extra initrd made for that machine
// alone, and a kernel command line.
//
// Layout under the boot directory:
//
//	entries/<mac>            symlink to ../versions/<mac>/<version>
//	versions/<mac>/<version>/entry.json
//	versions/<mac>/<version>/extra.cpio   (optional)
//	versions/<mac>/<version>/fetch/       (with extra.cpio: its fetch record)
//
// <mac> is the normalised MAC with hyphens (52-54-00-12-34-56). A
// version's content (entry.json, extra.cpio) is never changed once
// written; only its fetch record grows (see fetch.go: which client may
// have the archive, who got it, who was refused, and whether it is
// sealed). An entry changes by pointing the symlink
// at a new version (an atomic rename), so a booting machine that fetched
// its script from one version gets that version's kernel and initrd even if
// the entry changes meanwhile. Scripts name the version they were made
// from.
//
// extra.cpio is an uncompressed newc archive whose length is a multiple of
// 4 bytes, made to be loaded after the entry's initrds. Under BIOS iPXE
// places each initrd on a 4-byte boundary itself; the kernel's EFI stub
// joins the initrds it loads without aligning them, and the kernel stops
// unpacking at one that does not start on a 4-byte boundary ("invalid
// magic"), so the boot server serves every initrd padded with zeros to a
// multiple of 4 bytes (zeros between archives are skipped).
//
// ScriptPath gives the URL path of a machine's script on the boot server.
package bootentry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DefaultDir is where entries live unless told otherwise.
const DefaultDir = "/var/lib/landscaper/boot"

// Entry is one machine's boot entry, as stored in entry.json.
type Entry struct {
	// MAC is the normalised MAC address (52:54:00:12:34:56).
	MAC string `json:"mac"`
	// Kernel is the absolute path of the kernel.
	Kernel string `json:"kernel"`
	// Initrds are absolute paths of initrds, in boot order.
	Initrds []string `json:"initrds"`
	// Cmdline is the kernel command line (validated: see CheckCmdline).
	Cmdline string `json:"cmdline"`
	// HasExtra says whether the version holds extra.cpio, the archive of
	// files for this machine alone, loaded after the initrds.
	HasExtra bool `json:"hasExtra,omitempty"`
}

// Version is an entry as found on disk.
type Version struct {
	Entry
	// ID names the version (a hash of its content).
	ID string
	// Dir is the version's directory.
	Dir string
}

// ExtraPath returns the path of the version's extra archive, or "".
func (v *Version) ExtraPath() string {
	if !v.HasExtra {
		return ""
	}
	return filepath.Join(v.Dir, ExtraName)
}

// ExtraName is the file name of the extra initrd inside a version.
const ExtraName = "extra.cpio"

// ErrNotFound is returned for a MAC without an entry.
var ErrNotFound = errors.New("no boot entry")

// ErrDamaged is returned for a version whose entry.json cannot be read as
// an entry of its MAC (for instance, edited by hand or cut short).
var ErrDamaged = errors.New("damaged boot entry")

// ScriptPath returns the URL path, relative to the boot server's root, of
// the iPXE script the server makes for a machine: machine/<mac>.ipxe with
// the MAC in hyphen form. mac must be normalised (see NormalizeMAC).
func ScriptPath(mac string) string { return "machine/" + FileName(mac) + ".ipxe" }

// NormalizeMAC accepts the common notations of a 6-byte MAC address
// (aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff, aabbccddeeff, and
// pxelinux's 01-aa-bb-cc-dd-ee-ff) and returns it as lowercase with colons.
func NormalizeMAC(s string) (string, error) {
	in := strings.TrimSpace(s)
	if len(in) == 20 && strings.HasPrefix(in, "01-") {
		in = in[3:]
	}
	if len(in) == 12 && isHex(in) {
		in = strings.Join([]string{in[0:2], in[2:4], in[4:6], in[6:8], in[8:10], in[10:12]}, ":")
	}
	hw, err := net.ParseMAC(in)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address (expected six bytes like 52:54:00:12:34:56)", s)
	}
	return hw.String(), nil
}

// DefaultKey names the default entry: what a machine without an entry of
// its own boots (the installer of a role of interchangeable machines,
// say), in place of the MAC in file names and URLs.
const DefaultKey = "default"

// NormalizeKey is NormalizeMAC, and accepts DefaultKey (in any case) for
// the default entry.
func NormalizeKey(s string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(s), DefaultKey) {
		return DefaultKey, nil
	}
	return NormalizeMAC(s)
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// FileName returns the MAC as used in file names and URLs: hyphens.
func FileName(mac string) string { return strings.ReplaceAll(mac, ":", "-") }

var forbiddenInCmdline = regexp.MustCompile(`[\x00-\x1f\x7f]`)

// CheckCmdline refuses a kernel command line that could escape the iPXE
// script it is written into: control characters (a newline would start a
// new command) and iPXE settings expansion (${...}).
func CheckCmdline(cmdline string) error {
	if forbiddenInCmdline.MatchString(cmdline) {
		return errors.New("the kernel command line may not hold a newline or other control character")
	}
	if strings.Contains(cmdline, "${") {
		return errors.New("the kernel command line may not hold ${...}: iPXE would expand it")
	}
	for _, word := range strings.Fields(cmdline) {
		switch {
		case word == "||" || word == "&&" || word == ";":
			return fmt.Errorf("the kernel command line may not hold the word %q: iPXE would start another command there", word)
		case strings.HasPrefix(word, "#"):
			return fmt.Errorf("the kernel command line may not hold a word starting with #: iPXE would ignore the rest of the line")
		}
	}
	return nil
}

// Store reads and writes the entries under one boot directory.
type Store struct {
	Dir string
}

func (s Store) linkPath(mac string) string {
	return filepath.Join(s.Dir, "entries", FileName(mac))
}

func (s Store) versionsDir(mac string) string {
	return filepath.Join(s.Dir, "versions", FileName(mac))
}

// canonical returns the entry as Put stores it: MAC normalised, no nil
// initrd list, HasExtra set from extra.
func canonical(e Entry, extra []byte) (Entry, error) {
	mac, err := NormalizeKey(e.MAC)
	if err != nil {
		return Entry{}, err
	}
	e.MAC = mac
	if e.Initrds == nil {
		e.Initrds = []string{}
	}
	e.HasExtra = len(extra) > 0
	return e, nil
}

// VersionID returns the ID of the version that Put(e, extra) writes: a
// hash of the entry (its MAC normalised) and the extra archive. Comparing
// it with the ID of the current version tells whether an entry is still
// what was put.
func VersionID(e Entry, extra []byte) (string, error) {
	e, err := canonical(e, extra)
	if err != nil {
		return "", err
	}
	return versionID(e, extra), nil
}

// versionID hashes a canonical entry and its extra archive.
func versionID(e Entry, extra []byte) string {
	h := sha256.New()
	b, _ := json.Marshal(e)
	h.Write(b)
	h.Write([]byte{0})
	h.Write(extra)
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// Put writes a new version of the entry for e.MAC and points the entry at
// it atomically; extra (may be nil) becomes extra.cpio, readable by the
// boot server only (0640), with an empty fetch record directory (0770)
// beside it. Older versions than the previous one are
// removed; the previous one stays for machines booting from it right now.
// Putting the current content again changes nothing and removes nothing; a
// version directory whose content no longer matches its ID (damaged) is
// written anew. Files and directories are synced before the entry is
// switched, so after a crash the entry is the old version or the new one,
// each whole.
func (s Store) Put(e Entry, extra []byte) (*Version, error) {
	e, err := canonical(e, extra)
	if err != nil {
		return nil, err
	}
	if err := CheckCmdline(e.Cmdline); err != nil {
		return nil, err
	}
	mac := e.MAC
	id := versionID(e, extra)
	dir := filepath.Join(s.versionsDir(mac), id)
	if !s.intact(mac, id) {
		if err := s.writeVersion(dir, e, extra); err != nil {
			return nil, err
		}
	} else if e.HasExtra {
		// A version written before fetch records existed gets one.
		if err := ensureFetchDir(filepath.Join(dir, FetchDirName)); err != nil {
			return nil, err
		}
	}
	link := s.linkPath(mac)
	previous := ""
	if target, err := os.Readlink(link); err == nil {
		previous = filepath.Base(target)
	}
	if previous == id {
		return &Version{Entry: e, ID: id, Dir: dir}, nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return nil, fmt.Errorf("create entries directory: %w", err)
	}
	tmp := link + ".tmp-" + id
	_ = os.Remove(tmp)
	target := filepath.Join("..", "versions", FileName(mac), id)
	if err := os.Symlink(target, tmp); err != nil {
		return nil, fmt.Errorf("link entry %s: %w", mac, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("switch entry %s: %w", mac, err)
	}
	if err := syncDir(filepath.Dir(link)); err != nil {
		return nil, fmt.Errorf("switch entry %s: %w", mac, err)
	}
	s.prune(mac, id, previous)
	return &Version{Entry: e, ID: id, Dir: dir}, nil
}

// intact reports whether the version directory exists and its content
// hashes to its ID.
func (s Store) intact(mac, id string) bool {
	v, err := s.GetVersion(mac, id)
	if err != nil {
		return false
	}
	got, err := v.ContentID()
	return err == nil && got == id
}

// writeVersion writes a version into a temporary directory and renames it
// into place; a damaged directory in the way is replaced.
func (s Store) writeVersion(dir string, e Entry, extra []byte) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create entry versions directory %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("create entry version %s: %w", dir, err)
	}
	published := false
	defer func() {
		if !published {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("create entry version %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode entry: %w", err)
	}
	if err := writeSynced(filepath.Join(tmp, "entry.json"), b, 0o644); err != nil {
		return fmt.Errorf("write entry %s: %w", dir, err)
	}
	if len(extra) > 0 {
		if err := writeSynced(filepath.Join(tmp, ExtraName), extra, 0o640); err != nil {
			return fmt.Errorf("write extra initrd %s: %w", dir, err)
		}
		if err := ensureFetchDir(filepath.Join(tmp, FetchDirName)); err != nil {
			return err
		}
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("write entry version %s: %w", dir, err)
	}
	// A directory of this name that is not intact (Put checked) is moved
	// away first: rename does not replace a directory that holds files.
	trash := ""
	if _, err := os.Lstat(dir); err == nil {
		trash = tmp + ".damaged"
		if err := os.Rename(dir, trash); err != nil {
			return fmt.Errorf("move damaged entry version %s away: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("publish entry version %s: %w", dir, err)
	}
	published = true
	if trash != "" {
		_ = os.RemoveAll(trash)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("publish entry version %s: %w", dir, err)
	}
	return nil
}

// writeSynced writes a new file with exactly the given permissions (the
// umask does not apply) and syncs it to disk.
func writeSynced(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir syncs a directory, so the names created in it last.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// prune removes versions other than keep and previous, and what
// interrupted writes left behind.
func (s Store) prune(mac, keep, previous string) {
	entries, err := os.ReadDir(s.versionsDir(mac))
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() != keep && e.Name() != previous {
			_ = os.RemoveAll(filepath.Join(s.versionsDir(mac), e.Name()))
		}
	}
}

// Get returns the current version of a MAC's entry, or ErrNotFound.
func (s Store) Get(mac string) (*Version, error) {
	mac, err := NormalizeKey(mac)
	if err != nil {
		return nil, err
	}
	target, err := os.Readlink(s.linkPath(mac))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", mac, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read entry %s: %w", mac, err)
	}
	return s.GetVersion(mac, filepath.Base(target))
}

var versionRe = regexp.MustCompile(`^[0-9a-f]{20}$`)

// GetVersion returns one version of a MAC's entry (current or previous).
// A version whose entry.json cannot be parsed, or is for another MAC, is
// ErrDamaged.
func (s Store) GetVersion(mac, id string) (*Version, error) {
	mac, err := NormalizeKey(mac)
	if err != nil {
		return nil, err
	}
	if !versionRe.MatchString(id) {
		return nil, fmt.Errorf("%s version %q: %w", mac, id, ErrNotFound)
	}
	dir := filepath.Join(s.versionsDir(mac), id)
	b, err := os.ReadFile(filepath.Join(dir, "entry.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s version %s: %w", mac, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read entry %s: %w", dir, err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: parse %s: %w", ErrDamaged, dir, err)
	}
	if e.MAC != mac {
		return nil, fmt.Errorf("%w: entry %s is for %s, not %s", ErrDamaged, dir, e.MAC, mac)
	}
	return &Version{Entry: e, ID: id, Dir: dir}, nil
}

// ContentID hashes the version as it is on disk (entry.json and
// extra.cpio) the way Put names versions: for a version that nobody
// changed, it is v.ID. A version that says it has an extra archive but
// has none is ErrDamaged.
func (v *Version) ContentID() (string, error) {
	var extra []byte
	if v.HasExtra {
		b, err := os.ReadFile(filepath.Join(v.Dir, ExtraName))
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s has no %s", ErrDamaged, v.Dir, ExtraName)
		}
		if err != nil {
			return "", fmt.Errorf("read extra initrd of %s: %w", v.Dir, err)
		}
		if len(b) == 0 {
			return "", fmt.Errorf("%w: %s has an empty %s", ErrDamaged, v.Dir, ExtraName)
		}
		extra = b
	}
	return VersionID(v.Entry, extra)
}

// Delete removes a MAC's entry and all its versions. Deleting what is gone
// succeeds.
func (s Store) Delete(mac string) error {
	mac, err := NormalizeKey(mac)
	if err != nil {
		return err
	}
	if err := os.Remove(s.linkPath(mac)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove entry %s: %w", mac, err)
	}
	if err := os.RemoveAll(s.versionsDir(mac)); err != nil {
		return fmt.Errorf("remove entry versions %s: %w", mac, err)
	}
	return nil
}

// List returns the MACs that have an entry.
func (s Store) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Dir, "entries"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list entries: %w", err)
	}
	var macs []string
	for _, e := range entries {
		if mac, err := NormalizeKey(e.Name()); err == nil {
			macs = append(macs, mac)
		}
	}
	sort.Strings(macs)
	return macs, nil
}
