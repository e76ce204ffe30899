package local

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestHashFile checks the buffer sized to the file against sha256.Sum256
// of the whole contents: empty, smaller than the smallest buffer, around
// the buffer's sizes, and larger than the largest (read in several
// passes).
func TestHashFile(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 32<<10 - 1, 32 << 10, 32<<10 + 1, 200 << 10} {
		contents := bytes.Repeat([]byte("landscaper\n"), size/11+1)[:size]
		name := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(name, contents, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := hashFile(f)
		f.Close()
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		want := sha256.Sum256(contents)
		if got != hex.EncodeToString(want[:]) {
			t.Errorf("%d bytes: hash %s, want %s", size, got, hex.EncodeToString(want[:]))
		}
	}
}

// TestHashFileNotRegular hashes what a pipe gives, whose size Stat does
// not tell.
func TestHashFileNotRegular(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	contents := bytes.Repeat([]byte("x"), 100<<10)
	go func() {
		_, _ = w.Write(contents)
		w.Close()
	}()
	got, err := hashFile(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(contents)
	if got != hex.EncodeToString(want[:]) {
		t.Errorf("hash %s, want %s", got, hex.EncodeToString(want[:]))
	}
}
