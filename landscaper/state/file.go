package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File is a Backend that keeps the state as a JSON document in one file,
// with a writer lock in a file beside it (path + ".lock") and, once a File
// has replaced a stored state, the state it replaced in path + ".backup".
//
// The state holds private keys, so every file of it is written into its
// directory only while that directory is private: a directory that its
// group or others may write to, or that belongs to another user (not root),
// is refused (ErrUnsafe) before anything is written, since whoever can
// write there could plant names that redirect the state or its lock, or
// swap the files. Within the directory nothing is written through a
// symbolic link: temporary files are created exclusively under random
// names, and a lock file that is a link, not a regular file or hard-linked
// elsewhere is refused.
//
// A File remembers the lineage and serial of the state it last read or
// wrote and refuses (ErrStale) to overwrite a state that another writer
// has changed since. A File that found the stored state unreadable refuses
// to write until a later Read succeeds.
//
// A File is safe for concurrent use.
type File struct {
	path string
	// random names the temporary files (crypto/rand's Reader).
	random io.Reader

	mu sync.Mutex
	// seen is set once this File has read or written the state; exists,
	// lineage, serial and id then describe what it found or left there.
	seen    bool
	exists  bool
	lineage string
	serial  uint64
	id      fileID
	// wrote is set once this File has written: the backup is made before
	// the first write only.
	wrote bool
	// broken is the error of the last failed attempt to parse the stored
	// state; while it is set, Write refuses.
	broken error
	// cache holds the encoding of each resource record of the last write.
	cache        map[*Resource][]byte
	pendingCache map[*Pending][]byte
	// buf holds the document of the last write; the next write encodes
	// into it again (a state of 10,000 members is megabytes, written many
	// times by one apply).
	buf bytes.Buffer
}

var _ Backend = (*File)(nil)

// NewFile returns a Backend that keeps the state at path. Nothing is read
// or created until it is used.
func NewFile(path string) *File {
	return &File{path: filepath.Clean(path), random: rand.Reader}
}

// Describe returns the path of the state file.
func (f *File) Describe() string { return f.path }

// BackupPath returns where the state replaced by this File's first write is
// kept.
func (f *File) BackupPath() string { return f.path + ".backup" }

// LockPath returns the path of the lock file.
func (f *File) LockPath() string { return f.path + ".lock" }

// ErrUnsafe is matched (errors.Is) by the refusal to write a state, its
// backup or its lock into a place another user could redirect, read or
// replace: a state directory writable by its group or others (sticky bit
// or not) or owned by another user than the one running landscaper (or
// root), a lock file that is a symbolic link, not a regular file or has
// other hard links.
var ErrUnsafe = errors.New("unsafe place for the state")

// InvalidError is returned when a stored state exists but cannot be used:
// it is empty, truncated, not JSON, of an unknown format version or
// otherwise invalid. Such a state is never overwritten.
type InvalidError struct {
	// Path is the state file.
	Path string
	// Problem says what is wrong, e.g. "is empty".
	Problem string
	// Backup is the path of the backup file if one exists, else "".
	Backup string
	// Err is the underlying error, if any.
	Err error
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state file %s %s; refusing to use or overwrite it", e.Path, e.Problem)
	if e.Backup != "" {
		fmt.Fprintf(&b, " (an earlier good state is kept in %s)", e.Backup)
	}
	return b.String()
}

func (e *InvalidError) Unwrap() error { return e.Err }

// fileID identifies one version of a file cheaply: a write by rename
// changes the inode, an in-place write the size, mtime or ctime.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func idOf(fi fs.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{size: fi.Size()}
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// onDisk is what a look at the state file found.
type onDisk struct {
	exists  bool
	lineage string
	serial  uint64
	id      fileID
	raw     []byte // the file's bytes, when it was read
	state   *State // the parsed state, when it was read
}

// Read returns the stored state, or New() if there is none.
func (f *File) Read(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read state %s: %w", f.path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.load()
	if err != nil {
		return nil, err
	}
	f.remember(d)
	f.broken = nil
	if !d.exists {
		return New(), nil
	}
	return d.state, nil
}

// load reads and parses the state file. An unparsable file is remembered
// in f.broken.
func (f *File) load() (onDisk, error) {
	file, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return onDisk{}, nil
	}
	if err != nil {
		return onDisk{}, fmt.Errorf("read state %s: %w", f.path, err)
	}
	defer file.Close()
	// Stat before reading: a change made after the stat changes the id and
	// so is noticed by the next write.
	fi, err := file.Stat()
	if err != nil {
		return onDisk{}, fmt.Errorf("read state %s: %w", f.path, err)
	}
	if !fi.Mode().IsRegular() {
		err := f.invalid(fmt.Sprintf("is not a regular file (%s)", fi.Mode().Type()), nil)
		f.broken = err
		return onDisk{}, err
	}
	// Sized to the file (and a little more, so that the read ends without
	// growing it): a state of 10,000 members is a few MB, copied at every
	// doubling otherwise.
	var buf bytes.Buffer
	if n := fi.Size(); n > 0 && n < 1<<30 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(file); err != nil {
		return onDisk{}, fmt.Errorf("read state %s: %w", f.path, err)
	}
	s, err := f.decode(buf.Bytes())
	if err != nil {
		f.broken = err
		return onDisk{}, err
	}
	return onDisk{exists: true, lineage: s.Lineage, serial: s.Serial, id: idOf(fi), raw: buf.Bytes(), state: s}, nil
}

// look finds out what is on disk, reading the file only if it may have
// changed since this File last read or wrote it (or if full is set).
func (f *File) look(full bool) (onDisk, error) {
	if f.seen && !full {
		fi, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return onDisk{}, nil
		case err != nil:
			return onDisk{}, fmt.Errorf("stat state %s: %w", f.path, err)
		case f.exists && idOf(fi) == f.id:
			return onDisk{exists: true, lineage: f.lineage, serial: f.serial, id: f.id}, nil
		}
	}
	return f.load()
}

func (f *File) remember(d onDisk) {
	f.seen = true
	f.exists = d.exists
	f.lineage = d.lineage
	f.serial = d.serial
	f.id = d.id
}

// Write stores s atomically and durably and increases s.Serial by one. It
// refuses if the stored state could not be read, if its lineage is not
// s.Lineage, or if its serial is not s.Serial or not the one this File last
// read or wrote (ErrStale). Before the first write of this File that
// replaces a stored state, it copies that state to BackupPath. It refuses
// (ErrUnsafe) a state directory that is not private before writing
// anything.
func (f *File) Write(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write state %s: %w", f.path, err)
	}
	if s == nil {
		return fmt.Errorf("write state %s: no state given", f.path)
	}
	if s.Version != FormatVersion {
		return fmt.Errorf("write state %s: the state has format version %d, not %d", f.path, s.Version, FormatVersion)
	}
	if s.Lineage == "" {
		return fmt.Errorf("write state %s: the state has no lineage", f.path)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return fmt.Errorf("refusing to write %s: %w", f.path, f.broken)
	}
	d, err := f.look(!f.wrote)
	if err != nil {
		if f.broken != nil && f.seen {
			return fmt.Errorf("%w: %w", ErrStale, err)
		}
		return err
	}
	if err := f.check(d, s); err != nil {
		return err
	}
	dir, _, err := f.openDir()
	if err != nil {
		return fmt.Errorf("write state %s: %w", f.path, err)
	}
	defer dir.close()
	if !f.wrote && d.exists {
		if _, err := dir.writeAtomic(filepath.Base(f.BackupPath()), d.raw, f.random); err != nil {
			return fmt.Errorf("back up state %s: %w", f.path, err)
		}
	}
	out := *s
	out.Serial++
	if out.Resources == nil {
		out.Resources = map[string]*Resource{}
	}
	data, err := f.encode(&out)
	if err != nil {
		return fmt.Errorf("write state %s: %w", f.path, err)
	}
	id, err := dir.writeAtomic(filepath.Base(f.path), data, f.random)
	if err != nil {
		return fmt.Errorf("write state %s: %w", f.path, err)
	}
	s.Serial = out.Serial
	f.remember(onDisk{exists: true, lineage: s.Lineage, serial: s.Serial, id: id})
	f.wrote = true
	return nil
}

// check refuses to replace d by s unless s descends from d.
func (f *File) check(d onDisk, s *State) error {
	if f.seen {
		switch {
		case f.exists && !d.exists:
			return fmt.Errorf("%w: %s was removed since this process read or wrote it (at serial %d)", ErrStale, f.path, f.serial)
		case !f.exists && d.exists:
			return fmt.Errorf("%w: %s was created (serial %d) since this process found it missing", ErrStale, f.path, d.serial)
		case d.exists && (d.lineage != f.lineage || d.serial != f.serial):
			return fmt.Errorf("%w: %s is at serial %d (lineage %s); this process last read or wrote serial %d (lineage %s)", ErrStale, f.path, d.serial, d.lineage, f.serial, f.lineage)
		}
	}
	if !d.exists {
		return nil
	}
	if d.lineage != s.Lineage {
		return fmt.Errorf("%w: %s holds a state of lineage %s, not %s; refusing to replace another state", ErrStale, f.path, d.lineage, s.Lineage)
	}
	if d.serial != s.Serial {
		return fmt.Errorf("%w: %s is at serial %d, but the state to write was read at serial %d", ErrStale, f.path, d.serial, s.Serial)
	}
	return nil
}

// openDir opens the state's directory, creating it (mode 0700, with any
// missing parents) if it is missing, and checks that it is private. It
// returns the directories it created, deepest first.
func (f *File) openDir() (*stateDir, []string, error) {
	path := filepath.Dir(f.path)
	d, err := openStateDir(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return d, nil, err
	}
	var missing []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		missing = append(missing, p)
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		switch {
		case err == nil:
			created = append([]string{missing[i]}, created...)
		case !errors.Is(err, fs.ErrExist):
			return nil, created, fmt.Errorf("create state directory: %w", err)
		}
	}
	// Make the new directory's entry durable.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, created, fmt.Errorf("create state directory %s: %w", path, err)
	}
	d, err = openStateDir(path)
	return d, created, err
}

// encode writes the state as JSON. A resource record does not change once
// recorded (the Recorder stores copies), so its encoding is kept from one
// write to the next: an apply of many members re-encodes only the records
// that changed since the last write. The document is built in the
// File's buffer and is valid until the next call.
func (f *File) encode(s *State) ([]byte, error) {
	cache := make(map[*Resource][]byte, len(s.Resources))
	buf := &f.buf
	buf.Reset()
	head, err := encodeValue(struct {
		Version int    `json:"version"`
		Lineage string `json:"lineage"`
		Serial  uint64 `json:"serial"`
	}{s.Version, s.Lineage, s.Serial})
	if err != nil {
		return nil, err
	}
	buf.Write(head[:len(head)-1])
	buf.WriteString(`,"resources":`)
	if err := writeCachedObject(buf, s.Resources, f.cache, cache); err != nil {
		return nil, err
	}
	pendingCache := make(map[*Pending][]byte, len(s.Pending))
	if len(s.Pending) > 0 {
		buf.WriteString(`,"pending":`)
		if err := writeCachedObject(buf, s.Pending, f.pendingCache, pendingCache); err != nil {
			return nil, err
		}
	}
	buf.WriteString("}\n")
	f.cache, f.pendingCache = cache, pendingCache
	return buf.Bytes(), nil
}

// writeCachedObject writes m as a JSON object with sorted keys. A value
// encoded by the previous write (the same pointer in old) is not encoded
// again; next receives every value's encoding.
func writeCachedObject[T any](buf *bytes.Buffer, m map[string]*T, old, next map[*T][]byte) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	buf.WriteByte('{')
	for i, n := range names {
		v := m[n]
		b, ok := old[v]
		if !ok {
			var err error
			if b, err = encodeValue(v); err != nil {
				return fmt.Errorf("encode %s: %w", n, err)
			}
		}
		next[v] = b
		if i > 0 {
			buf.WriteByte(',')
		}
		writeKey(buf, n)
		buf.WriteByte(':')
		buf.Write(b)
	}
	buf.WriteByte('}')
	return nil
}

// writeKey writes an object key as JSON: as it is between quotes when it
// has nothing to escape (as almost every member name), else encoded.
func writeKey(buf *bytes.Buffer, k string) {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b, _ := encodeValue(k)
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(k)
	buf.WriteByte('"')
}

// encodeValue encodes v as compact JSON without a newline, keeping
// recorded JSON values byte for byte.
func encodeValue(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decode parses and validates a stored state.
func (f *File) decode(data []byte) (*State, error) {
	s, err := Parse(data)
	var pe *ParseError
	if errors.As(err, &pe) {
		return nil, f.invalid(pe.Problem, pe.Err)
	}
	return s, err
}

// position returns the 1-based line and column of the byte before offset.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:max(offset-1, 0)]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func (f *File) invalid(problem string, err error) *InvalidError {
	e := &InvalidError{Path: f.path, Problem: problem, Err: err}
	if fi, err := os.Stat(f.BackupPath()); err == nil && fi.Mode().IsRegular() {
		e.Backup = f.BackupPath()
	}
	return e
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Lock takes the writer lock: an flock on LockPath, held until the returned
// func is called or this process dies. The holder's info is written into the
// lock file so that a refused writer can say who holds it. With timeout 0
// Lock fails at once with a *LockedError if another holds the lock;
// otherwise it retries (every 50ms, backing off to every second) until the
// timeout passes or ctx is done. It creates the state's directory (0700) if
// it is missing and refuses (ErrUnsafe) one that is not private or a lock
// file that is a link or not a regular file, before writing anything. Once
// it holds the lock it removes the temporary files of killed writers.
//
// A directory that Lock created is removed again by the unlock, with the
// lock file, if nothing else was put there meanwhile: a run that wrote no
// state leaves nothing behind.
func (f *File) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (func() error, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock state %s: %w", f.path, err)
	}
	deadline := time.Now().Add(timeout)
	delay := 50 * time.Millisecond
	// created lists the directories this Lock made, deepest first.
	var created []string
	for {
		dir, made, err := f.openDir()
		if err != nil {
			return nil, fmt.Errorf("lock state %s: %w", f.path, err)
		}
		if len(made) > 0 {
			created = made
		}
		lf, err := dir.openLock(filepath.Base(f.LockPath()))
		if err != nil {
			dir.close()
			return nil, fmt.Errorf("lock state %s: %w", f.path, err)
		}
		if err := f.flockWait(ctx, lf, timeout, deadline, &delay); err != nil {
			lf.Close()
			dir.close()
			return nil, err
		}
		if lockRemoved(lf) {
			// The holder before us removed the lock file (and the
			// directory it had made) as it let go: lock anew.
			lf.Close()
			dir.close()
			continue
		}
		unlock, err := f.hold(dir, lf, info, created)
		dir.close()
		return unlock, err
	}
}

// flockWait takes the flock on lf, waiting as Lock describes.
func (f *File) flockWait(ctx context.Context, lf *os.File, timeout time.Duration, deadline time.Time, delay *time.Duration) error {
	for {
		err := flock(lf, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock state %s: flock %s: %w", f.path, f.LockPath(), err)
		}
		wait := min(*delay, time.Until(deadline))
		if timeout <= 0 || wait <= 0 {
			return f.lockedError()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting: %w)", f.lockedError(), ctx.Err())
		case <-t.C:
		}
		*delay = min(2**delay, time.Second)
	}
}

// lockRemoved reports whether the lock file lf is no longer in its
// directory.
func lockRemoved(lf *os.File) bool {
	fi, err := lf.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

// hold records the holder in the lock file lf, whose flock is taken, and
// returns the func that lets go of it.
func (f *File) hold(dir *stateDir, lf *os.File, info LockInfo, created []string) (func() error, error) {
	if err := writeLockInfo(lf, info); err != nil {
		lf.Close()
		return nil, fmt.Errorf("lock state %s: write %s: %w", f.path, f.LockPath(), err)
	}
	// Writers of the state hold the lock (landscaper's always do), so
	// temporary files there now are left over by a writer that was killed.
	dir.removeTemps(filepath.Base(f.path), filepath.Base(f.BackupPath()))
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			// Clear the holder while still holding the lock. The file
			// itself stays, unless its directory was made by this Lock
			// and holds nothing else: a locker that opened it already
			// sees that it was removed and locks anew.
			_ = lf.Truncate(0)
			if len(created) > 0 {
				f.removeUnused(created)
			}
			err := flock(lf, syscall.LOCK_UN)
			if cerr := lf.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				uerr = fmt.Errorf("unlock state %s: %w", f.path, err)
			}
		})
		return uerr
	}, nil
}

// removeUnused removes the lock file and then the directories Lock created
// (deepest first), if the state's directory holds nothing but the lock
// file. The caller holds the lock. It is best effort: what it cannot
// remove stays and harms nothing.
func (f *File) removeUnused(created []string) {
	d, err := openStateDir(filepath.Dir(f.path))
	if err != nil {
		return
	}
	defer d.close()
	fd, err := syscall.Openat(d.fd, ".", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	list := os.NewFile(uintptr(fd), d.path)
	names, err := list.Readdirnames(-1)
	list.Close()
	lock := filepath.Base(f.LockPath())
	if err != nil || len(names) != 1 || names[0] != lock {
		return
	}
	if err := syscall.Unlinkat(d.fd, lock); err != nil {
		return
	}
	for _, dir := range created {
		if err := syscall.Rmdir(dir); err != nil {
			return
		}
	}
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

func writeLockInfo(lf *os.File, info LockInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := lf.Truncate(0); err != nil {
		return err
	}
	_, err = lf.WriteAt(append(data, '\n'), 0)
	return err
}

// lockedError reads who holds the lock. The holder writes its info just
// after taking the lock, so an empty file is read again a few times.
func (f *File) lockedError() *LockedError {
	e := &LockedError{Where: f.path}
	for try := 0; try < 5; try++ {
		data, err := os.ReadFile(f.LockPath())
		if err == nil && json.Unmarshal(data, &e.Holder) == nil {
			return e
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.Holder = LockInfo{Command: "unknown holder"}
	return e
}
