package state

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// victim is a file outside the state's directory that another user would
// like landscaper to write to (or to create): planted links point at it.
type victim struct {
	path string
	// exists: the file is there (with contents and mode 0644); otherwise
	// the planted link dangles and nothing may create the file.
	exists   bool
	contents []byte
}

func newVictim(t *testing.T, exists bool) victim {
	t.Helper()
	v := victim{path: filepath.Join(t.TempDir(), "victim"), exists: exists, contents: []byte("another user's file\n")}
	if exists {
		if err := os.WriteFile(v.path, v.contents, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(v.path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// untouched fails the test unless the victim is as it was: same contents
// and mode, or still missing.
func (v victim) untouched(t *testing.T) {
	t.Helper()
	fi, err := os.Lstat(v.path)
	if !v.exists {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the target of a dangling planted link was created: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("victim: %v", err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("victim's mode changed to %v", fi.Mode())
	}
	if got, _ := os.ReadFile(v.path); !bytes.Equal(got, v.contents) {
		t.Errorf("victim was written through a planted link; it holds %q", got)
	}
}

// describe says what an Lstat found.
func describe(fi fs.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return fi.Mode().String()
}

// privateStateDir returns a new state path in a private (0700) directory.
func privateStateDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "state.json")
}

// TestPlantedLinksNotFollowed: a symbolic link planted in the state's
// directory under the name of the temporary file (the fixed name earlier
// versions used), of the backup or of the lock is never written through,
// whether it points at another user's file or at a file that does not exist
// yet. A planted temporary or backup name is replaced by the write; a
// planted lock is refused, naming it.
func TestPlantedLinksNotFollowed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		plant string // the name in the state's directory
		// existing: a state is stored before the link is planted (so the
		// write makes a backup).
		existing bool
		dangling bool
		// wantLockErr: Lock refuses, with an error holding these.
		wantLockErr []string
	}{
		{name: "temporary name, to a file", plant: ".state.json.tmp"},
		{name: "temporary name, dangling", plant: ".state.json.tmp", dangling: true},
		{name: "temporary name, to a file, over a stored state", plant: ".state.json.tmp", existing: true},
		{name: "backup, to a file", plant: "state.json.backup", existing: true},
		{name: "backup, dangling", plant: "state.json.backup", existing: true, dangling: true},
		{name: "lock, to a file", plant: "state.json.lock", wantLockErr: []string{"state.json.lock", "is a symbolic link", "refusing to follow it"}},
		{name: "lock, dangling", plant: "state.json.lock", dangling: true, wantLockErr: []string{"state.json.lock", "is a symbolic link"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := privateStateDir(t)
			var before []byte
			if tt.existing {
				s := New()
				s.Resources["old"] = sampleResource(1)
				mustWrite(t, NewFile(path), s)
				before, _ = os.ReadFile(path)
			}
			v := newVictim(t, !tt.dangling)
			planted := filepath.Join(filepath.Dir(path), tt.plant)
			if err := os.Symlink(v.path, planted); err != nil {
				t.Fatal(err)
			}

			f := NewFile(path)
			unlock, err := f.Lock(ctx, testLockInfo("landscaper state push"), 0)
			if tt.wantLockErr != nil {
				if err == nil {
					unlock()
					t.Fatal("Lock took a lock through a planted symbolic link")
				}
				if !errors.Is(err, ErrUnsafe) {
					t.Errorf("Lock: %v, want ErrUnsafe", err)
				}
				for _, want := range append(tt.wantLockErr, planted) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Lock error %q does not say %q", err, want)
					}
				}
				v.untouched(t)
				if fi, err := os.Lstat(planted); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("the planted lock was replaced or removed: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			defer unlock()
			s := mustRead(t, f)
			s.Resources["secret"] = sampleResource(2)
			mustWrite(t, f, s)
			v.untouched(t)
			// The state is a regular file of mode 0600 in its directory
			// and reads back.
			if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("state file: %v; want a regular file of mode 0600", describe(fi, err))
			}
			if got := mustRead(t, NewFile(path)); got.Resources["secret"] == nil {
				t.Errorf("the state read back lacks what was written: %v", got.Resources)
			}
			if tt.existing {
				if fi, err := os.Lstat(f.BackupPath()); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
					t.Fatalf("backup: %v; want a regular file of mode 0600", describe(fi, err))
				}
				if got, _ := os.ReadFile(f.BackupPath()); !bytes.Equal(got, before) {
					t.Errorf("backup holds %q, want the state before the write", got)
				}
			}
			// A planted temporary name is gone: the lock holder cleared it.
			if tt.plant == ".state.json.tmp" {
				if _, err := os.Lstat(planted); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("planted %s is still there: %v", tt.plant, err)
				}
			}
		})
	}
}

// TestNonRegularLockRefused: a lock file that is not a regular file of its
// own (a directory, a FIFO, a hard link to another file) is refused before
// anything is written to it.
func TestNonRegularLockRefused(t *testing.T) {
	tests := []struct {
		name    string
		plant   func(t *testing.T, lock string, v victim)
		wantErr string
	}{
		{name: "directory", wantErr: "is not a regular file", plant: func(t *testing.T, lock string, _ victim) {
			if err := os.Mkdir(lock, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "fifo", wantErr: "is not a regular file", plant: func(t *testing.T, lock string, _ victim) {
			if err := syscall.Mkfifo(lock, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "hard link", wantErr: "has 2 hard links", plant: func(t *testing.T, lock string, v victim) {
			if err := os.Link(v.path, lock); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := privateStateDir(t)
			// The victim lives in the same file system, so that a hard link
			// to it can be made.
			v := victim{path: filepath.Join(filepath.Dir(filepath.Dir(path)), "victim"), exists: true, contents: []byte("another user's file\n")}
			if err := os.WriteFile(v.path, v.contents, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(v.path, 0o644); err != nil {
				t.Fatal(err)
			}
			f := NewFile(path)
			tt.plant(t, f.LockPath(), v)
			unlock, err := f.Lock(context.Background(), testLockInfo("landscaper apply"), 0)
			if err == nil {
				unlock()
				t.Fatal("Lock used a lock file that is not a regular file of its own")
			}
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), f.LockPath()) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Lock: %v, want ErrUnsafe naming %s and saying %q", err, f.LockPath(), tt.wantErr)
			}
			v.untouched(t)
		})
	}
}

// TestUnsafeStateDirRefused: a state directory that others can write to
// (its group or everyone, sticky or not) or that belongs to another user is
// refused by Lock and Write before anything is written, naming the
// directory and its mode and saying how to fix it; a private one is used.
func TestUnsafeStateDirRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		mode    fs.FileMode
		uid     int // owner; -1 for the test's own user
		wantErr []string
	}{
		{name: "0700", mode: 0o700, uid: -1},
		{name: "0755", mode: 0o755, uid: -1},
		{name: "0750", mode: 0o750, uid: -1},
		{name: "owned by root", mode: 0o700, uid: 0},
		{name: "world-writable", mode: 0o777, uid: -1, wantErr: []string{"mode 0777", "writable by its group or others", "chmod go-w"}},
		{name: "world-writable, sticky", mode: 0o777 | fs.ModeSticky, uid: -1, wantErr: []string{"mode 1777", "writable by its group or others", "chmod go-w"}},
		{name: "group-writable", mode: 0o770, uid: -1, wantErr: []string{"mode 0770", "writable by its group or others", "chmod go-w"}},
		{name: "others may only write", mode: 0o702, uid: -1, wantErr: []string{"mode 0702", "writable by its group or others"}},
		{name: "owned by another user", mode: 0o700, uid: 4242, wantErr: []string{"owned by uid 4242", "chown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid >= 0 && os.Geteuid() != 0 {
				t.Skip("changing a directory's owner needs root (as in CI)")
			}
			path := privateStateDir(t)
			dir := filepath.Dir(path)
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.uid >= 0 {
				if err := os.Chown(dir, tt.uid, -1); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chown(dir, os.Geteuid(), -1) })
			}
			f := NewFile(path)
			unlock, lockErr := f.Lock(ctx, testLockInfo("landscaper state push"), 0)
			if lockErr == nil {
				defer unlock()
			}
			writeErr := f.Write(ctx, New())
			if tt.wantErr == nil {
				if lockErr != nil || writeErr != nil {
					t.Fatalf("in a %v directory: Lock: %v; Write: %v", tt.mode, lockErr, writeErr)
				}
				if got := mustRead(t, NewFile(path)); got.Serial != 1 {
					t.Errorf("serial %d after one write, want 1", got.Serial)
				}
				return
			}
			for what, err := range map[string]error{"Lock": lockErr, "Write": writeErr} {
				if err == nil {
					t.Errorf("%s in a %v directory owned by uid %d succeeded", what, tt.mode, tt.uid)
					continue
				}
				if !errors.Is(err, ErrUnsafe) {
					t.Errorf("%s: %v, want ErrUnsafe", what, err)
				}
				for _, want := range append(tt.wantErr, dir) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s error %q does not say %q", what, err, want)
					}
				}
			}
			// Nothing was written there.
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("the refused directory holds %v", names)
			}
		})
	}
}

// TestCopyRefusesUnsafePlaces: state push and pull (Copy) refuse a file
// state whose directory others can write to, at either end, and leave a
// planted link's target alone; the copy between private places works.
func TestCopyRefusesUnsafePlaces(t *testing.T) {
	ctx := context.Background()
	info := testLockInfo("landscaper state push")
	tests := []struct {
		name string
		// unsafeFrom, unsafeTo: that end's directory is world-writable,
		// with a link to a victim planted at the old temporary name and
		// at the lock.
		unsafeFrom, unsafeTo bool
	}{
		{name: "private to private"},
		{name: "push into a world-writable directory", unsafeTo: true},
		{name: "pull from a world-writable directory", unsafeFrom: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := privateStateDir(t)
			s := New()
			s.Resources["host"] = sampleResource(1)
			mustWrite(t, NewFile(src), s)
			dst := privateStateDir(t)
			v := newVictim(t, true)
			for _, end := range []struct {
				unsafe bool
				path   string
			}{{tt.unsafeFrom, src}, {tt.unsafeTo, dst}} {
				if !end.unsafe {
					continue
				}
				dir := filepath.Dir(end.path)
				if err := os.Chmod(dir, 0o777); err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{".state.json.tmp", "state.json.lock"} {
					if err := os.Symlink(v.path, filepath.Join(dir, name)); err != nil {
						t.Fatal(err)
					}
				}
			}
			namesBefore := dirNames(t, filepath.Dir(dst))
			_, err := Copy(ctx, NewFile(src), NewFile(dst), info, 0)
			v.untouched(t)
			if !tt.unsafeFrom && !tt.unsafeTo {
				if err != nil {
					t.Fatalf("Copy: %v", err)
				}
				if got := mustRead(t, NewFile(dst)); got.Lineage != s.Lineage || got.Resources["host"] == nil {
					t.Errorf("copied state: lineage %s, resources %v", got.Lineage, got.Resources)
				}
				return
			}
			unsafeDir := filepath.Dir(dst)
			if tt.unsafeFrom {
				unsafeDir = filepath.Dir(src)
			}
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), unsafeDir) {
				t.Fatalf("Copy: %v, want ErrUnsafe naming %s", err, unsafeDir)
			}
			if names := dirNames(t, filepath.Dir(dst)); !reflect.DeepEqual(names, namesBefore) {
				t.Errorf("the destination's directory holds %v, held %v", names, namesBefore)
			}
			if slices.Contains(dirNames(t, filepath.Dir(dst)), "state.json") {
				t.Errorf("a state was written to the destination")
			}
		})
	}
}

// repeatReader yields the same bytes at every read.
type repeatReader []byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r[i%len(r)]
	}
	return len(p), nil
}

// TestTakenTempNameNotOpened: a temporary file's random name that is
// taken (here: by a planted link to another user's file) is never opened;
// another name is tried, and when every name tried is taken the write
// fails, naming the directory, with the state untouched.
func TestTakenTempNameNotOpened(t *testing.T) {
	first := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	second := []byte{9, 10, 11, 12, 13, 14, 15, 16}
	tests := []struct {
		name   string
		random io.Reader // the File's random source
		// wantErr: the write fails saying this.
		wantErr string
	}{
		{name: "first name taken, the next is free", random: bytes.NewReader(append(first, second...))},
		{name: "every name taken", random: repeatReader(first), wantErr: "random names beginning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := privateStateDir(t)
			mustWrite(t, NewFile(path), New())
			before, _ := os.ReadFile(path)
			v := newVictim(t, true)
			taken := filepath.Join(filepath.Dir(path), ".state.json.tmp-0102030405060708")
			if err := os.Symlink(v.path, taken); err != nil {
				t.Fatal(err)
			}
			f := NewFile(path)
			f.random = tt.random
			s := mustRead(t, f)
			s.Resources["secret"] = sampleResource(1)
			err := f.Write(context.Background(), s)
			v.untouched(t)
			if fi, lerr := os.Lstat(taken); lerr != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("the taken name was replaced: %v", describe(fi, lerr))
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				if got := mustRead(t, NewFile(path)); got.Resources["secret"] == nil {
					t.Errorf("the write did not land: %v", got.Resources)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), filepath.Dir(path)) || !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Write: %v, want an error saying %q naming %s", err, tt.wantErr, filepath.Dir(path))
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Errorf("the state changed after a failed write")
			}
		})
	}
}

// TestLeftoverTempsRemovedUnderLock: temporary files of the state and of
// its backup left by killed writers (and planted links of such names) are
// removed once the lock is taken, without following a link; other names
// stay.
func TestLeftoverTempsRemovedUnderLock(t *testing.T) {
	path := privateStateDir(t)
	dir := filepath.Dir(path)
	v := newVictim(t, true)
	leftovers := []string{".state.json.tmp", ".state.json.tmp-00112233445566ff", ".state.json.backup.tmp-8899aabbccddeeff"}
	for _, name := range leftovers {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := ".state.json.tmp-0000000000000001"
	if err := os.Symlink(v.path, filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}
	others := []string{".other.json.tmp-00112233445566ff", ".state.json.tmp-short", "notes"}
	for _, name := range others {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := NewFile(path).Lock(context.Background(), testLockInfo("landscaper apply"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	v.untouched(t)
	want := append(slices.Clone(others), "state.json.lock")
	slices.Sort(want)
	if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("after Lock the directory holds %v, want %v", got, want)
	}
}
