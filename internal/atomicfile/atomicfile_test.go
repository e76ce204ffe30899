package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, tc := range []struct {
		data string
		mode os.FileMode
	}{{"one", 0o644}, {"two, replacing it", 0o400}} {
		if err := Write(p, []byte(tc.data), tc.mode); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		b, _ := os.ReadFile(p)
		if err != nil || string(b) != tc.data || st.Mode().Perm() != tc.mode {
			t.Fatalf("%q %v %v, want %q %v", b, st.Mode().Perm(), err, tc.data, tc.mode)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := Write(filepath.Join(dir, "no", "such", "dir"), nil, 0o600); err == nil {
		t.Fatal("wrote into a directory that does not exist")
	}
}
