// Package atomicfile writes a file whole: readers see the old contents or
// the new, never a part, and after a crash the file is one or the other.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path with exactly mode (not masked by the umask):
// a temporary file beside it, given its mode before any byte is written,
// fsynced, and renamed over path.
func Write(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
