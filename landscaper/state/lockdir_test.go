package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLockRemovesWhatItMade: the directories Lock created are removed by
// the unlock, with the lock file, when nothing else was put there (a run
// that failed, or had nothing to record); what was there before, or a
// state written meanwhile, stays.
func TestLockRemovesWhatItMade(t *testing.T) {
	cases := []struct {
		name string
		// existing is the part of deploy/.landscaper that exists before
		// Lock: "", "deploy" or "deploy/.landscaper".
		existing string
		write    bool
		// gone are the paths (relative to the temporary directory) that
		// must be gone after the unlock; kept those that must remain.
		gone, kept []string
	}{
		{"nothing existed, nothing written", "", false, []string{"deploy"}, nil},
		{"deployment existed, nothing written", "deploy", false, []string{"deploy/.landscaper"}, []string{"deploy"}},
		{"state directory existed", "deploy/.landscaper", false, nil, []string{"deploy/.landscaper/state.json.lock"}},
		{"state written", "", true, nil, []string{"deploy/.landscaper/state.json", "deploy/.landscaper/state.json.lock"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.existing != "" {
				if err := os.MkdirAll(filepath.Join(root, tc.existing), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			f := NewFile(filepath.Join(root, "deploy", ".landscaper", "state.json"))
			unlock, err := f.Lock(context.Background(), testLockInfo("landscaper plan"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.write {
				st := New()
				st.Resources["a"] = sampleResource(1)
				if err := f.Write(context.Background(), st); err != nil {
					t.Fatal(err)
				}
			}
			if err := unlock(); err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.gone {
				if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there after the unlock (%v)", p, err)
				}
			}
			for _, p := range tc.kept {
				if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s is gone after the unlock: %v", p, err)
				}
			}
		})
	}
}

// TestLockWaiterAfterRemoval: a locker waiting on a lock file that the
// holder removes as it lets go locks a new one, which keeps out others.
func TestLockWaiterAfterRemoval(t *testing.T) {
	path := statePath(t)
	unlock, err := NewFile(path).Lock(context.Background(), testLockInfo("first"), 0)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, func() { _ = unlock() })
	unlock2, err := NewFile(path).Lock(context.Background(), testLockInfo("second"), 10*time.Second)
	if err != nil {
		t.Fatalf("waiting Lock: %v", err)
	}
	defer unlock2()
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("the waiter holds no lock file at its place: %v", err)
	}
	var le *LockedError
	if _, err := NewFile(path).Lock(context.Background(), testLockInfo("third"), 0); !errors.As(err, &le) || le.Holder.Command != "second" {
		t.Errorf("third Lock while the waiter holds it: %v, want *LockedError naming second", err)
	}
}
