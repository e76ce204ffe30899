// Package cpio writes cpio archives in the "newc" format (the SVR4 format
// without checksums, magic "070701"): the format the Linux kernel unpacks
// into its initial root file system, alone or appended to another initrd,
// and that GNU cpio reads with -H newc (or by detection).
//
// Only directories and regular files are written, owned by root, with a
// modification time of 0, so the same input always gives the same bytes.
//
// Each entry is a 110-byte ASCII header (the magic and thirteen 8-digit
// hexadecimal fields), the NUL-terminated name padded so that header and
// name end on a 4-byte boundary, and the data padded to 4 bytes. The
// archive ends with an entry named "TRAILER!!!".
package cpio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Magic starts every header of a newc archive.
const Magic = "070701"

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

// HeaderSize is the size of a newc header, before the name.
const HeaderSize = 110

// MaxFileSize is the largest file a newc header can describe.
const MaxFileSize = 1<<32 - 1

// The file type bits of the mode field.
const (
	typeDir  = 0o040000
	typeFile = 0o100000
)

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("cpio: archive closed")

// Writer writes a newc archive entry by entry. Every entry's parent
// directory must have been written before it (or the entry be at the top),
// so the archive unpacks on its own, by the kernel or by cpio -i without
// -d. Names are relative paths without "." or ".." steps: "etc/ssh".
type Writer struct {
	w      io.Writer
	ino    uint32
	dirs   map[string]bool
	names  map[string]bool
	err    error
	closed bool
}

// NewWriter returns a Writer that writes an archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, dirs: map[string]bool{}, names: map[string]bool{}}
}

// WriteDir adds a directory with the given permissions (the permission
// bits, setuid, setgid and sticky; no other mode bits).
func (w *Writer) WriteDir(name string, perm fs.FileMode) error {
	bits, err := w.check(name, perm)
	if err != nil {
		return err
	}
	if err := w.entry(name, typeDir|bits, 2, nil); err != nil {
		return err
	}
	w.dirs[name] = true
	return nil
}

// WriteFile adds a regular file with the given permissions and contents.
func (w *Writer) WriteFile(name string, perm fs.FileMode, data []byte) error {
	bits, err := w.check(name, perm)
	if err != nil {
		return err
	}
	if int64(len(data)) > MaxFileSize {
		return fmt.Errorf("cpio: %s: %d bytes is more than a newc archive can hold (%d)", name, len(data), int64(MaxFileSize))
	}
	return w.entry(name, typeFile|bits, 1, data)
}

// Close writes the trailer. It does not close the underlying writer.
// Closing twice is harmless.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err != nil {
		return w.err
	}
	if err := w.entry(Trailer, 0, 1, nil); err != nil {
		return err
	}
	w.closed = true
	return nil
}

// check validates a name and a permission for a new entry and returns the
// Unix mode bits.
func (w *Writer) check(name string, perm fs.FileMode) (uint32, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := ValidName(name); err != nil {
		return 0, err
	}
	if w.names[name] {
		return 0, fmt.Errorf("cpio: %s is in the archive already", name)
	}
	if dir := path.Dir(name); dir != "." && !w.dirs[dir] {
		return 0, fmt.Errorf("cpio: %s: its directory %s is not in the archive (write it first)", name, dir)
	}
	return unixPerm(perm)
}

// ValidName reports whether name can name an entry: a relative, clean
// path ("etc/ssh/key") without "." or ".." steps, NUL bytes or the name of
// the trailer.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("cpio: empty name")
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("cpio: name %q holds a NUL byte", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("cpio: name %q is absolute (names in an archive are relative: drop the leading /)", name)
	case path.Clean(name) != name || name == "." || name == ".." || strings.HasPrefix(name, "../"):
		return fmt.Errorf("cpio: name %q is not a clean relative path", name)
	case name == Trailer:
		return fmt.Errorf("cpio: %q is the name of the archive's end", name)
	}
	return nil
}

// unixPerm turns permissions into the Unix mode bits of a header.
func unixPerm(perm fs.FileMode) (uint32, error) {
	if perm&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return 0, fmt.Errorf("cpio: mode %v: only permission, setuid, setgid and sticky bits can be given", perm)
	}
	bits := uint32(perm & fs.ModePerm)
	if perm&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if perm&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if perm&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits, nil
}

var zeros [4]byte

// entry writes one header, name and data, padded.
func (w *Writer) entry(name string, mode, nlink uint32, data []byte) error {
	ino := uint32(0)
	if name != Trailer {
		w.ino++
		ino = w.ino
	}
	nameSize := len(name) + 1
	var hdr strings.Builder
	hdr.Grow(HeaderSize + nameSize + 3)
	hdr.WriteString(Magic)
	for _, field := range [13]uint32{
		ino, mode, 0 /* uid */, 0 /* gid */, nlink, 0, /* mtime */
		uint32(len(data)), 0, 0, 0, 0, /* dev and rdev major, minor */
		uint32(nameSize), 0, /* check */
	} {
		fmt.Fprintf(&hdr, "%08x", field)
	}
	hdr.WriteString(name)
	hdr.WriteByte(0)
	hdr.Write(zeros[:pad(HeaderSize+nameSize)])
	if _, err := io.WriteString(w.w, hdr.String()); err != nil {
		w.err = fmt.Errorf("cpio: write %s: %w", name, err)
		return w.err
	}
	if len(data) > 0 {
		if _, err := w.w.Write(data); err != nil {
			w.err = fmt.Errorf("cpio: write %s: %w", name, err)
			return w.err
		}
		if _, err := w.w.Write(zeros[:pad(len(data))]); err != nil {
			w.err = fmt.Errorf("cpio: write %s: %w", name, err)
			return w.err
		}
	}
	if name != Trailer {
		w.names[name] = true
	}
	return nil
}

// pad returns how many bytes take n to a multiple of 4.
func pad(n int) int { return (4 - n%4) % 4 }

// File is a file for Build: an absolute path in the unpacked tree, its
// permissions and its contents.
type File struct {
	Path string
	Perm fs.FileMode
	Data []byte
}

// DirPerm is the permission of the directories Build adds.
const DirPerm fs.FileMode = 0o755

// Build returns an archive of the files, with an entry (mode 0755) for
// every directory above them, directories first, each group sorted, so
// the same files always give the same archive. Paths are absolute and
// clean ("/etc/ssh/ssh_host_ed25519_key"); a path that is also the
// directory of another is an error.
//
// Unpacked over an existing tree (an appended initrd), the directory
// entries also set the mode of directories that exist already.
func Build(files []File) ([]byte, error) {
	byName := make(map[string]File, len(files))
	dirs := map[string]bool{}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "/") {
			return nil, fmt.Errorf("cpio: path %q is not absolute", f.Path)
		}
		name := f.Path[1:]
		if err := ValidName(name); err != nil {
			return nil, err
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("cpio: %s is given twice", f.Path)
		}
		byName[name] = f
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		if _, isFile := byName[d]; isFile {
			return nil, fmt.Errorf("cpio: /%s is a file and also the directory of another file", d)
		}
		dirNames = append(dirNames, d)
	}
	// A directory sorts before what is below it: its name is a prefix.
	sort.Strings(dirNames)
	fileNames := make([]string, 0, len(byName))
	for n := range byName {
		fileNames = append(fileNames, n)
	}
	sort.Strings(fileNames)

	var b bytes.Buffer
	w := NewWriter(&b)
	for _, d := range dirNames {
		if err := w.WriteDir(d, DirPerm); err != nil {
			return nil, err
		}
	}
	for _, n := range fileNames {
		f := byName[n]
		if err := w.WriteFile(n, f.Perm, f.Data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
