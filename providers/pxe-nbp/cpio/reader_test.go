package cpio_test

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/cpio"
)

// entry is one member of an archive as the test reader sees it.
type entry struct {
	Name                   string
	Ino, Mode, UID, GID    uint32
	Nlink, Mtime           uint32
	DevMajor, DevMinor     uint32
	RdevMajor, RdevMinor   uint32
	Check                  uint32
	Data                   []byte
	HeaderOffset, DataSize int
}

const (
	typeMask = 0o170000
	typeDir  = 0o040000
	typeFile = 0o100000
)

// readArchive parses a newc archive strictly, the way the Linux kernel's
// initramfs unpacker does and a little more: the magic, thirteen 8-digit
// hex fields, a NUL-terminated name whose size counts the NUL, header and
// name padded with zeros to 4 bytes, the data padded with zeros to 4
// bytes, a trailer, and nothing but zeros after it. The trailer is not
// returned.
func readArchive(b []byte) ([]entry, error) {
	var out []entry
	off := 0
	for {
		if len(b)-off < cpio.HeaderSize {
			return nil, fmt.Errorf("offset %d: archive ends without a trailer (%d bytes left)", off, len(b)-off)
		}
		if off%4 != 0 {
			return nil, fmt.Errorf("offset %d: header not aligned to 4 bytes", off)
		}
		h := b[off : off+cpio.HeaderSize]
		if string(h[:6]) != cpio.Magic {
			return nil, fmt.Errorf("offset %d: magic %q, want %q", off, h[:6], cpio.Magic)
		}
		var f [13]uint32
		for i := range f {
			s := string(h[6+8*i : 6+8*i+8])
			for _, c := range s {
				if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
					return nil, fmt.Errorf("offset %d: field %d %q is not 8 hex digits", off, i, s)
				}
			}
			v, err := strconv.ParseUint(s, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("offset %d: field %d: %w", off, i, err)
			}
			f[i] = uint32(v)
		}
		e := entry{Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], Nlink: f[4], Mtime: f[5],
			DevMajor: f[7], DevMinor: f[8], RdevMajor: f[9], RdevMinor: f[10], Check: f[12], HeaderOffset: off}
		size, nameSize := int(f[6]), int(f[11])
		if nameSize < 1 || nameSize > 4096 {
			return nil, fmt.Errorf("offset %d: name size %d", off, nameSize)
		}
		nameEnd := off + cpio.HeaderSize + nameSize
		if nameEnd > len(b) {
			return nil, fmt.Errorf("offset %d: name runs past the end", off)
		}
		name := b[off+cpio.HeaderSize : nameEnd]
		if name[nameSize-1] != 0 || bytes.IndexByte(name[:nameSize-1], 0) >= 0 {
			return nil, fmt.Errorf("offset %d: name %q is not one NUL-terminated string", off, name)
		}
		e.Name = string(name[:nameSize-1])
		dataStart := align(nameEnd)
		if dataStart > len(b) || !allZero(b[nameEnd:dataStart]) {
			return nil, fmt.Errorf("offset %d (%s): bad padding after the name", off, e.Name)
		}
		if e.Name == cpio.Trailer {
			if !allZero(b[dataStart:]) {
				return nil, fmt.Errorf("offset %d: %d bytes after the trailer are not zeros", dataStart, len(b)-dataStart)
			}
			return out, nil
		}
		dataEnd := dataStart + size
		if size < 0 || dataEnd > len(b) || align(dataEnd) > len(b) {
			return nil, fmt.Errorf("offset %d (%s): %d bytes of data run past the end", off, e.Name, size)
		}
		if !allZero(b[dataEnd:align(dataEnd)]) {
			return nil, fmt.Errorf("offset %d (%s): bad padding after the data", off, e.Name)
		}
		e.Data = b[dataStart:dataEnd]
		e.DataSize = size
		out = append(out, e)
		off = align(dataEnd)
	}
}

// checkTree checks what a kernel needs to unpack entries written by this
// package: only directories and regular files, directories without data,
// each entry's directory written before it, no name twice, no hard links,
// root-owned, and time 0.
func checkTree(entries []entry) error {
	dirs := map[string]bool{}
	seen := map[string]bool{}
	inos := map[uint32]bool{}
	for _, e := range entries {
		if err := cpio.ValidName(e.Name); err != nil {
			return err
		}
		if seen[e.Name] {
			return fmt.Errorf("%s twice", e.Name)
		}
		seen[e.Name] = true
		if inos[e.Ino] || e.Ino == 0 {
			return fmt.Errorf("%s: inode %d used twice (or 0)", e.Name, e.Ino)
		}
		inos[e.Ino] = true
		if d := path.Dir(e.Name); d != "." && !dirs[d] {
			return fmt.Errorf("%s comes before its directory", e.Name)
		}
		if e.UID != 0 || e.GID != 0 || e.Mtime != 0 || e.Check != 0 || e.DevMajor|e.DevMinor|e.RdevMajor|e.RdevMinor != 0 {
			return fmt.Errorf("%s: unexpected owner, time, device or check field: %+v", e.Name, e)
		}
		switch e.Mode & typeMask {
		case typeDir:
			if e.DataSize != 0 || e.Nlink != 2 {
				return fmt.Errorf("directory %s with %d bytes of data, %d links", e.Name, e.DataSize, e.Nlink)
			}
			dirs[e.Name] = true
		case typeFile:
			if e.Nlink != 1 {
				return fmt.Errorf("file %s with %d links", e.Name, e.Nlink)
			}
		default:
			return fmt.Errorf("%s: mode %o is neither a directory nor a regular file", e.Name, e.Mode)
		}
		if e.Mode&^uint32(typeMask|0o7777) != 0 {
			return fmt.Errorf("%s: mode %o has unknown bits", e.Name, e.Mode)
		}
	}
	return nil
}

func align(n int) int { return (n + 3) &^ 3 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var errShortWrite = errors.New("disk full")

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errShortWrite
	}
	w.n -= len(p)
	return len(p), nil
}
