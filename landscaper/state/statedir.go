package state

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/landscaper-nix/landscaper/internal/eintr"
)

// stateDir is the state's directory, opened once and found private. The
// state's files are created, opened, renamed and removed relative to the
// open directory, so that what was checked is what is written to, even if
// a name on the way to it is replaced meanwhile.
type stateDir struct {
	path string
	fd   int
}

// openStateDir opens the directory at path and checks that nobody but its
// owner, who must be the effective user or root, can write to it.
func openStateDir(path string) (*stateDir, error) {
	var fd int
	err := eintr.Retry(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open state directory", Path: path, Err: err}
	}
	d := &stateDir{path: path, fd: fd}
	if err := d.check(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// check refuses a directory that others can write to. The sticky bit does
// not make one safe: it stops others from removing or renaming the state's
// files, not from creating their names first (a lock, a fake state, a link).
func (d *stateDir) check() error {
	var st syscall.Stat_t
	if err := syscall.Fstat(d.fd, &st); err != nil {
		return &fs.PathError{Op: "stat state directory", Path: d.path, Err: err}
	}
	mode := st.Mode & 0o7777
	if mode&0o022 != 0 {
		return fmt.Errorf("%w: the state directory %s (mode %04o) is writable by its group or others, "+
			"who could plant names there that make landscaper write the state, with its private keys, where they choose; "+
			"refusing to write there: make it private with `chmod go-w %s` if it is yours alone, or keep the state in a directory of your own",
			ErrUnsafe, d.path, mode, d.path)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid && st.Uid != 0 {
		return fmt.Errorf("%w: the state directory %s is owned by uid %d, not by you (uid %d) or root, "+
			"and its owner could replace the state or its lock; "+
			"refusing to write there: `chown %d %s` if it is yours, or keep the state in a directory of your own",
			ErrUnsafe, d.path, st.Uid, euid, euid, d.path)
	}
	return nil
}

func (d *stateDir) close() {
	syscall.Close(d.fd)
}

// join returns the path of name in the directory, for messages.
func (d *stateDir) join(name string) string { return filepath.Join(d.path, name) }

// tempPrefix is how the names of base's temporary files begin. A random
// suffix of tempRandom bytes, in hex, follows.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

const (
	tempRandom = 8
	// tempTries is how many random names are tried before giving up: a
	// name is taken only if it was planted or left over.
	tempTries = 16
)

// createTemp creates a new temporary file for base: exclusively (a name
// that exists, as a file or a link, is never opened), not following links,
// mode 0600, under a random name.
func (d *stateDir) createTemp(base string, random io.Reader) (*os.File, string, error) {
	var lastErr error
	for range tempTries {
		var b [tempRandom]byte
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return nil, "", fmt.Errorf("name a temporary file in %s: %w", d.path, err)
		}
		name := tempPrefix(base) + hex.EncodeToString(b[:])
		var fd int
		err := eintr.Retry(func() (err error) {
			fd, err = syscall.Openat(d.fd, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
			return err
		})
		if errors.Is(err, syscall.EEXIST) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, "", &fs.PathError{Op: "create", Path: d.join(name), Err: err}
		}
		return os.NewFile(uintptr(fd), d.join(name)), name, nil
	}
	return nil, "", fmt.Errorf("create a temporary file for %s: %d random names beginning %s were all taken: %w", d.join(base), tempTries, d.join(tempPrefix(base)), lastErr)
}

// writeAtomic replaces base by a file holding data, mode 0600: it writes a
// new temporary file, syncs it, renames it over base and syncs the
// directory. A link at base is replaced, not followed. It returns the
// identity of the new file.
func (d *stateDir) writeAtomic(base string, data []byte, random io.Reader) (id fileID, err error) {
	tmp, name, err := d.createTemp(base, random)
	if err != nil {
		return id, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			syscall.Unlinkat(d.fd, name)
		}
	}()
	// The mode given to create is narrowed by the umask; the state is 0600
	// whatever the umask.
	if err = tmp.Chmod(0o600); err != nil {
		return id, err
	}
	if _, err = tmp.Write(data); err != nil {
		return id, err
	}
	if err = tmp.Sync(); err != nil {
		return id, err
	}
	if err = eintr.Retry(func() error { return syscall.Renameat(d.fd, name, d.fd, base) }); err != nil {
		return id, &os.LinkError{Op: "rename", Old: d.join(name), New: d.join(base), Err: err}
	}
	// From here on the new file is in place: do not remove it.
	fi, statErr := tmp.Stat()
	closeErr := tmp.Close()
	if err := d.sync(); err != nil {
		return id, err
	}
	if statErr != nil {
		return id, statErr
	}
	if closeErr != nil {
		return id, closeErr
	}
	return idOf(fi), nil
}

func (d *stateDir) sync() error {
	if err := eintr.Retry(func() error { return syscall.Fsync(d.fd) }); err != nil {
		return fmt.Errorf("sync directory %s: %w", d.path, err)
	}
	return nil
}

// openLock opens (creating it, mode 0600, if missing) the lock file name.
// It refuses a symbolic link, anything but a regular file, and a file with
// other hard links, before writing anything to it.
func (d *stateDir) openLock(name string) (*os.File, error) {
	path := d.join(name)
	var fd int
	// O_CLOEXEC: provider processes must never inherit the lock. (Opening
	// a planted FIFO for reading and writing does not block on Linux; it is
	// refused below.)
	err := eintr.Retry(func() (err error) {
		fd, err = syscall.Openat(d.fd, name, syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		return err
	})
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("%w: the lock file %s is a symbolic link; refusing to follow it (remove it if you made it)", ErrUnsafe, path)
	case errors.Is(err, syscall.EISDIR):
		return nil, fmt.Errorf("%w: the lock file %s is not a regular file (a directory); refusing to use it", ErrUnsafe, path)
	case err != nil:
		return nil, &fs.PathError{Op: "open lock file", Path: path, Err: err}
	}
	lf := os.NewFile(uintptr(fd), path)
	if err := checkLock(lf, path); err != nil {
		lf.Close()
		return nil, err
	}
	if err := lf.Chmod(0o600); err != nil {
		lf.Close()
		return nil, err
	}
	return lf, nil
}

func checkLock(lf *os.File, path string) error {
	fi, err := lf.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: the lock file %s is not a regular file (%s); refusing to use it", ErrUnsafe, path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 {
		return fmt.Errorf("%w: the lock file %s has %d hard links, so it is another file's too; refusing to write to it (remove it: it is made again)", ErrUnsafe, path, st.Nlink)
	}
	return nil
}

// removeTemps removes the temporary files of the bases (the state and its
// backup), left over by writers that were killed; the caller holds the
// lock, so no writer is using one. A planted link of such a name is
// removed, never followed. It is best effort: a name it cannot remove stays
// and harms nothing, since each write makes a new one.
func (d *stateDir) removeTemps(bases ...string) {
	fd, err := syscall.Openat(d.fd, ".", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	list := os.NewFile(uintptr(fd), d.path)
	names, _ := list.Readdirnames(-1)
	list.Close()
	for _, name := range names {
		for _, base := range bases {
			if isTemp(base, name) {
				_ = syscall.Unlinkat(d.fd, name)
			}
		}
	}
}

// isTemp reports whether name is one of base's temporary files: a random
// one, or the one fixed name that earlier versions used.
func isTemp(base, name string) bool {
	if name == "."+base+".tmp" {
		return true
	}
	suffix, ok := strings.CutPrefix(name, tempPrefix(base))
	if !ok || len(suffix) != 2*tempRandom {
		return false
	}
	_, err := hex.DecodeString(suffix)
	return err == nil
}
