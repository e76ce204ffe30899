package bootserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// errInternal is what a client learns when the server cannot serve a file
// it knows of (an unreadable entry, a command line that fails the checks);
// the log says more.
var errInternal = errors.New("internal error")

// content is what a request resolves to: a script made for it, or an open
// file of an entry or of the iPXE directory.
type content struct {
	body    io.ReadSeeker
	size    int64
	modTime time.Time
	// file is the open file, nil for scripts.
	file *os.File
	// contentType is the HTTP Content-Type.
	contentType string
	// mac and version say which entry the content belongs to, if any.
	mac, version string
	// noEntry marks the script of a MAC without an entry.
	noEntry bool
	// installed marks the script of an installed machine, which sends it
	// to its disk.
	installed bool
}

// Close closes the file behind the content, if there is one.
func (c *content) Close() error {
	if c.file == nil {
		return nil
	}
	return c.file.Close()
}

// outcome is the outcome of a complete transfer of the content.
func (c *content) outcome() outcome {
	if c.noEntry {
		return outcomeNoEntry
	}
	if c.installed {
		return outcomeLocalBoot
	}
	return outcomeOK
}

func scriptContent(b []byte) *content {
	return &content{body: bytes.NewReader(b), size: int64(len(b)), contentType: "text/plain; charset=utf-8"}
}

// resolve finds what a request names. Entries are read on every request,
// so new, changed and removed entries take effect without a restart. The
// only files it opens to serve are an entry's kernel and initrds (as
// entry.json names them), its extra archive, and the iPXE binaries; a
// version's fetch record (secret.go) is read and written for its script
// and its extra archive, and the extra archive goes only to the client
// the record names. Errors wrap errUnknownName (nothing by that name),
// errRefused (the extra archive, to another client) or errInternal. rec
// is the request's record: its client, and what the log line says.
func (s *Server) resolve(req request, rec *record) (*content, error) {
	switch req.kind {
	case kindBootScript:
		return scriptContent([]byte(bootScript)), nil
	case kindMachineScript:
		return s.machineScript(req.mac, rec)
	case kindKernel, kindInitrd, kindExtra:
		return s.versionFile(req, rec)
	case kindIPXE:
		if s.cfg.IPXEDir == "" {
			return nil, fmt.Errorf("%w: no iPXE directory configured", errUnknownName)
		}
		return s.openFile(filepath.Join(s.cfg.IPXEDir, req.binary))
	}
	return nil, fmt.Errorf("%w: request kind %d", errInternal, req.kind)
}

// machineScript makes the script of one machine, or the script that sends
// a machine without an entry on to its next boot device.
func (s *Server) machineScript(mac string, rec *record) (*content, error) {
	v, err := s.store.Get(mac)
	if errors.Is(err, bootentry.ErrNotFound) && mac != bootentry.DefaultKey {
		// A machine without an entry of its own boots the default entry,
		// if the deployment made one; else it goes on to its next boot
		// device.
		v, err = s.store.Get(bootentry.DefaultKey)
		if err == nil {
			rec.attrs = append(rec.attrs, slog.Bool("default_entry", true))
		}
	}
	if errors.Is(err, bootentry.ErrNotFound) {
		c := scriptContent(renderNoEntryScript(mac))
		c.mac, c.noEntry = mac, true
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read boot entry of %s: %w", errInternal, mac, err)
	}
	if v.MAC == bootentry.DefaultKey {
		b, err := renderMachineScript(v, s.base)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errInternal, err)
		}
		c := scriptContent(b)
		c.mac, c.version = v.MAC, v.ID
		return c, nil
	}
	if in, err := s.store.Installed(mac); err == nil {
		c := scriptContent(renderInstalledScript(mac, in.Toplevel))
		c.mac, c.version, c.installed = mac, v.ID, true
		return c, nil
	} else if !errors.Is(err, bootentry.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", errInternal, err)
	}
	b, err := renderMachineScript(v, s.base)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInternal, err)
	}
	s.noteScript(v, rec)
	c := scriptContent(b)
	c.mac, c.version = v.MAC, v.ID
	return c, nil
}

// versionFile opens the kernel, an initrd or the extra archive of one
// version of an entry.
func (s *Server) versionFile(req request, rec *record) (*content, error) {
	v, err := s.store.GetVersion(req.mac, req.version)
	if errors.Is(err, bootentry.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", errUnknownName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read boot entry of %s: %w", errInternal, req.mac, err)
	}
	var path string
	switch req.kind {
	case kindKernel:
		path = v.Kernel
	case kindInitrd:
		if req.index >= len(v.Initrds) {
			return nil, fmt.Errorf("%w: %s version %s has %d initrds, not %d", errUnknownName, v.MAC, v.ID, len(v.Initrds), req.index+1)
		}
		path = v.Initrds[req.index]
	case kindExtra:
		path = v.ExtraPath()
		if path == "" {
			return nil, fmt.Errorf("%w: %s version %s has no extra archive", errUnknownName, v.MAC, v.ID)
		}
		if err := s.guardArchive(v, rec); err != nil {
			return nil, err
		}
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: entry %s version %s names %q, which is not an absolute path", errInternal, v.MAC, v.ID, path)
	}
	c, err := s.openFile(path)
	if err != nil {
		return nil, err
	}
	if req.kind == kindInitrd {
		// The extra archive is written a multiple of 4 bytes long already.
		c.padTo4()
	}
	c.mac, c.version = v.MAC, v.ID
	return c, nil
}

// openFile opens a regular file through the configured opener.
func (s *Server) openFile(path string) (*content, error) {
	f, err := s.cfg.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", errUnknownName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", errInternal, path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: stat %s: %w", errInternal, path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", errInternal, path)
	}
	return &content{
		body: f, file: f, size: fi.Size(), modTime: fi.ModTime(),
		contentType: "application/octet-stream",
	}, nil
}
