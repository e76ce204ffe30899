package cpio_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/cpio"
)

// requireCpio returns the path of GNU cpio, failing the test with a clear
// message when it is not installed.
func requireCpio(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cpio")
	if err != nil {
		t.Fatalf("GNU cpio is needed to check archives but is not installed (on Debian: apt-get install cpio; scripts/install-deps.sh should install it): %v", err)
	}
	return p
}

// runCpio runs cpio with the archive on standard input in dir.
func runCpio(t *testing.T, dir string, archive []byte, args ...string) string {
	t.Helper()
	bin := requireCpio(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(archive)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpio %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	// GNU cpio reports trouble it survives (bad headers skipped, say) on
	// standard error; with --quiet nothing else goes there.
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Fatalf("cpio %s complained: %s", strings.Join(args, " "), s)
	}
	return stdout.String()
}

func TestBuildRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name  string
		files []cpio.File
		dirs  []string // directories the archive must hold, in order
	}{
		{name: "no files"},
		{
			name:  "one file at the top",
			files: []cpio.File{{Path: "/hello", Perm: 0o644, Data: []byte("hi\n")}},
		},
		{
			name: "ssh keys, nested directories",
			files: []cpio.File{
				{Path: "/etc/ssh/ssh_host_ed25519_key", Perm: 0o400, Data: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")},
				{Path: "/etc/ssh/authorized_keys", Perm: 0o444, Data: []byte("ssh-ed25519 AAAA test\n")},
				{Path: "/root/.ssh/authorized_keys", Perm: 0o600, Data: []byte("ssh-ed25519 BBBB root\n")},
				{Path: "/etc/hostname", Perm: 0o644, Data: []byte("node1\n")},
			},
			dirs: []string{"etc", "etc/ssh", "root", "root/.ssh"},
		},
		{
			name:  "deep path",
			files: []cpio.File{{Path: "/a/b/c/d/e/f", Perm: 0o640, Data: []byte("deep")}},
			dirs:  []string{"a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e"},
		},
		{
			name: "every padding of names and data",
			files: []cpio.File{
				{Path: "/a", Perm: 0o444, Data: []byte("1")},
				{Path: "/ab", Perm: 0o444, Data: []byte("12")},
				{Path: "/abc", Perm: 0o444, Data: []byte("123")},
				{Path: "/abcd", Perm: 0o444, Data: []byte("1234")},
				{Path: "/abcde", Perm: 0o444, Data: []byte("12345")},
			},
		},
		{
			name:  "empty file",
			files: []cpio.File{{Path: "/etc/empty", Perm: 0o444}},
			dirs:  []string{"etc"},
		},
		{
			name:  "setuid, setgid and sticky",
			files: []cpio.File{{Path: "/bin/tool", Perm: 0o755 | fs.ModeSetuid | fs.ModeSetgid, Data: []byte("#!/bin/sh\n")}, {Path: "/x/y", Perm: 0o644 | fs.ModeSticky, Data: []byte("y")}},
			dirs:  []string{"bin", "x"},
		},
		{
			name:  "binary contents",
			files: []cpio.File{{Path: "/bin.dat", Perm: 0o600, Data: []byte{0, 1, 2, 0xff, '\n', 0, 0, 0}}},
		},
		{
			name:  "odd names",
			files: []cpio.File{{Path: "/with space/ünïcode-é", Perm: 0o644, Data: []byte("x")}, {Path: "/a-b/c", Perm: 0o644, Data: []byte("y")}, {Path: "/a/c", Perm: 0o644, Data: []byte("z")}},
			dirs:  []string{"a", "a-b", "with space"},
		},
		{
			name:  "one MiB",
			files: []cpio.File{{Path: "/var/big", Perm: 0o644, Data: big}},
			dirs:  []string{"var"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive, err := cpio.Build(tt.files)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if len(archive)%4 != 0 {
				t.Errorf("archive of %d bytes is not padded to 4", len(archive))
			}
			again, err := cpio.Build(slices.Clone(tt.files))
			if err != nil || !bytes.Equal(again, archive) {
				t.Errorf("a second Build gives other bytes (err %v): not deterministic", err)
			}

			// The strict Go reader.
			entries, err := readArchive(archive)
			if err != nil {
				t.Fatalf("read archive: %v", err)
			}
			if err := checkTree(entries); err != nil {
				t.Fatalf("archive tree: %v", err)
			}
			var wantNames []string
			wantNames = append(wantNames, tt.dirs...)
			var fileNames []string
			for _, f := range tt.files {
				fileNames = append(fileNames, f.Path[1:])
			}
			slices.Sort(fileNames)
			wantNames = append(wantNames, fileNames...)
			var gotNames []string
			for _, e := range entries {
				gotNames = append(gotNames, e.Name)
				if e.Mode&typeMask == typeDir && e.Mode&0o7777 != 0o755 {
					t.Errorf("directory %s has mode %o, want 755", e.Name, e.Mode&0o7777)
				}
			}
			if !slices.Equal(gotNames, wantNames) {
				t.Errorf("entries = %q, want %q", gotNames, wantNames)
			}

			// GNU cpio lists the same names in the same order.
			list := runCpio(t, t.TempDir(), archive, "-t", "--quiet")
			var listed []string
			if s := strings.TrimRight(list, "\n"); s != "" {
				listed = strings.Split(s, "\n")
			}
			if !slices.Equal(listed, wantNames) {
				t.Errorf("cpio -t lists %q, want %q", listed, wantNames)
			}

			// GNU cpio unpacks it, without -d: the archive holds its
			// directories.
			dir := t.TempDir()
			runCpio(t, dir, archive, "-i", "--quiet", "--no-absolute-filenames", "--preserve-modification-time")
			for _, f := range tt.files {
				name := filepath.Join(dir, filepath.FromSlash(f.Path[1:]))
				got, err := os.ReadFile(name)
				if err != nil {
					t.Errorf("unpacked %s: %v", f.Path, err)
					continue
				}
				if !bytes.Equal(got, f.Data) {
					t.Errorf("unpacked %s holds %d bytes that differ from the %d given", f.Path, len(got), len(f.Data))
				}
				fi, err := os.Stat(name)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() &^ fs.ModeType; got != f.Perm {
					t.Errorf("unpacked %s has mode %v, want %v", f.Path, got, f.Perm)
				}
				if !fi.Mode().IsRegular() {
					t.Errorf("unpacked %s is not a regular file", f.Path)
				}
			}
			for _, d := range tt.dirs {
				fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(d)))
				if err != nil {
					t.Errorf("unpacked directory %s: %v", d, err)
					continue
				}
				if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
					t.Errorf("unpacked %s: mode %v, want a directory with 0755", d, fi.Mode())
				}
			}
			var unpacked []string
			_ = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
				if err == nil && p != dir {
					rel, _ := filepath.Rel(dir, p)
					unpacked = append(unpacked, filepath.ToSlash(rel))
				}
				return err
			})
			slices.Sort(unpacked)
			want := slices.Clone(wantNames)
			slices.Sort(want)
			if !slices.Equal(unpacked, want) {
				t.Errorf("cpio -i made %q, want exactly %q", unpacked, want)
			}
		})
	}
}

// TestAppended checks that an archive appended to another (as the extra
// initrd follows a machine's initrds) is read by GNU cpio as the kernel
// reads it: one after the other.
func TestAppended(t *testing.T) {
	first, err := cpio.Build([]cpio.File{{Path: "/init", Perm: 0o755, Data: []byte("#!/bin/sh\n")}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := cpio.Build([]cpio.File{{Path: "/etc/secret", Perm: 0o400, Data: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readArchive(first); err != nil {
		t.Fatal(err)
	}
	// The kernel skips zeros between archives; GNU cpio reads one archive
	// per run, so each part is checked on its own, and the offset where
	// the second starts is 4-byte aligned (what the kernel needs).
	if len(first)%4 != 0 {
		t.Fatalf("first archive of %d bytes: the next would start unaligned", len(first))
	}
	dir := t.TempDir()
	runCpio(t, dir, second, "-i", "--quiet")
	if fi, err := os.Stat(filepath.Join(dir, "etc", "secret")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("second archive unpacked to %v, %v", fi, err)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []cpio.File
		want  string
	}{
		{"relative", []cpio.File{{Path: "etc/x", Perm: 0o444}}, "not absolute"},
		{"root", []cpio.File{{Path: "/", Perm: 0o444}}, "empty name"},
		{"dot dot", []cpio.File{{Path: "/etc/../x", Perm: 0o444}}, "not a clean"},
		{"trailing slash", []cpio.File{{Path: "/etc/", Perm: 0o444}}, "not a clean"},
		{"double slash", []cpio.File{{Path: "//etc", Perm: 0o444}}, "absolute"},
		{"NUL", []cpio.File{{Path: "/a\x00b", Perm: 0o444}}, "NUL"},
		{"trailer", []cpio.File{{Path: "/TRAILER!!!", Perm: 0o444}}, "end"},
		{"twice", []cpio.File{{Path: "/a", Perm: 0o444}, {Path: "/a", Perm: 0o400}}, "twice"},
		{"file is a directory too", []cpio.File{{Path: "/a", Perm: 0o444}, {Path: "/a/b", Perm: 0o444}}, "also the directory"},
		{"type bits", []cpio.File{{Path: "/a", Perm: fs.ModeDir | 0o755}}, "only permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cpio.Build(tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWriterRules(t *testing.T) {
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	steps := []struct {
		what string
		do   func() error
		ok   bool
	}{
		{"file at the top", func() error { return w.WriteFile("top", 0o644, []byte("t")) }, true},
		{"file in a directory not written", func() error { return w.WriteFile("etc/x", 0o644, nil) }, false},
		{"directory", func() error { return w.WriteDir("etc", 0o755) }, true},
		{"file in it", func() error { return w.WriteFile("etc/x", 0o600, []byte("x")) }, true},
		{"same name again", func() error { return w.WriteFile("etc/x", 0o600, nil) }, false},
		{"directory named like a file", func() error { return w.WriteDir("top", 0o755) }, false},
		{"absolute name", func() error { return w.WriteFile("/abs", 0o644, nil) }, false},
		{"dot", func() error { return w.WriteDir(".", 0o755) }, false},
		{"dot dot", func() error { return w.WriteFile("../up", 0o644, nil) }, false},
		{"unclean", func() error { return w.WriteFile("etc/./y", 0o644, nil) }, false},
		{"empty", func() error { return w.WriteFile("", 0o644, nil) }, false},
		{"symlink mode", func() error { return w.WriteFile("link", fs.ModeSymlink|0o777, nil) }, false},
		{"trailer name", func() error { return w.WriteFile(cpio.Trailer, 0o644, nil) }, false},
		{"close", w.Close, true},
		{"close again", w.Close, true},
		{"write after close", func() error { return w.WriteFile("late", 0o644, nil) }, false},
	}
	for _, s := range steps {
		err := s.do()
		if (err == nil) != s.ok {
			t.Errorf("%s: error %v, want success %v", s.what, err, s.ok)
		}
	}
	if err := w.WriteDir("later", 0o755); !errors.Is(err, cpio.ErrClosed) {
		t.Errorf("write after close = %v, want ErrClosed", err)
	}
	entries, err := readArchive(buf.Bytes())
	if err != nil {
		t.Fatalf("refused writes broke the archive: %v", err)
	}
	if err := checkTree(entries); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if want := []string{"top", "etc", "etc/x"}; !slices.Equal(names, want) {
		t.Errorf("entries = %q, want %q", names, want)
	}
}

func TestWriterFailingWriter(t *testing.T) {
	for _, n := range []int{0, 5, cpio.HeaderSize, cpio.HeaderSize + 8, cpio.HeaderSize + 9} {
		w := cpio.NewWriter(&failingWriter{n: n})
		err := w.WriteFile("abcd", 0o644, []byte("data"))
		if err == nil {
			err = w.Close()
		}
		if !errors.Is(err, errShortWrite) {
			t.Errorf("after %d bytes: error %v, want the writer's", n, err)
		}
		if err2 := w.Close(); !errors.Is(err2, errShortWrite) {
			t.Errorf("after %d bytes: Close after a failed write = %v, want the writer's error again", n, err2)
		}
	}
}

// FuzzWriter feeds arbitrary names, modes and contents to the Writer and to
// Build: they must never panic, and whatever they accept must come out as
// an archive the strict reader parses, holding exactly what was accepted.
// The seeds are in testdata/fuzz/FuzzWriter and run with plain go test.
func FuzzWriter(f *testing.F) {
	f.Fuzz(func(t *testing.T, dir string, dirMode uint32, data1 []byte, name string, mode uint32, data2 []byte) {
		type want struct {
			name string
			mode uint32
			data []byte
		}
		var wants []want
		perm := func(m uint32) fs.FileMode {
			p := fs.FileMode(m & 0o777)
			if m&0o4000 != 0 {
				p |= fs.ModeSetuid
			}
			if m&0o2000 != 0 {
				p |= fs.ModeSetgid
			}
			if m&0o1000 != 0 {
				p |= fs.ModeSticky
			}
			return p
		}
		var buf bytes.Buffer
		w := cpio.NewWriter(&buf)
		// The raw mode: mostly refused, never a panic.
		if w.WriteDir(dir, fs.FileMode(dirMode)) == nil {
			wants = append(wants, want{dir, 0o040000 | uint32(fs.FileMode(dirMode)&fs.ModePerm), nil})
		} else if w.WriteDir(dir, perm(dirMode)) == nil {
			wants = append(wants, want{dir, 0o040000 | dirMode&0o7777, nil})
		}
		inner := path.Join(dir, name)
		if w.WriteFile(inner, perm(mode), data1) == nil {
			wants = append(wants, want{inner, 0o100000 | mode&0o7777, data1})
		}
		if w.WriteFile(name, perm(mode), data2) == nil {
			wants = append(wants, want{name, 0o100000 | mode&0o7777, data2})
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		entries, err := readArchive(buf.Bytes())
		if err != nil {
			t.Fatalf("Writer output does not parse: %v", err)
		}
		if err := checkTree(entries); err != nil {
			t.Fatalf("Writer output: %v", err)
		}
		if len(entries) != len(wants) {
			t.Fatalf("archive holds %d entries, %d were accepted", len(entries), len(wants))
		}
		for i, e := range entries {
			if e.Name != wants[i].name || e.Mode != wants[i].mode || !bytes.Equal(e.Data, wants[i].data) {
				t.Fatalf("entry %d = %q mode %o (%d bytes), want %q mode %o (%d bytes)", i, e.Name, e.Mode, len(e.Data), wants[i].name, wants[i].mode, len(wants[i].data))
			}
		}

		files := []cpio.File{{Path: "/" + name, Perm: perm(mode), Data: data2}, {Path: "/" + path.Join(dir, name), Perm: perm(dirMode), Data: data1}}
		archive, err := cpio.Build(files)
		if err != nil {
			return
		}
		entries, err = readArchive(archive)
		if err != nil {
			t.Fatalf("Build output does not parse: %v", err)
		}
		if err := checkTree(entries); err != nil {
			t.Fatalf("Build output: %v", err)
		}
		byName := map[string]entry{}
		for _, e := range entries {
			byName[e.Name] = e
		}
		for _, f := range files {
			e, ok := byName[f.Path[1:]]
			if !ok || e.Mode&typeMask != typeFile || !bytes.Equal(e.Data, f.Data) {
				t.Fatalf("Build lost %q", f.Path)
			}
		}
	})
}
