package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testfs"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{seed, 'l', 's'})
	_, _ = r.Read(b)
	return b
}

// goodStateFile writes a state with a few resources and a pending record
// through a File and returns its path and bytes.
func goodStateFile(t *testing.T) (string, []byte) {
	t.Helper()
	path := statePath(t)
	f := NewFile(path)
	s := mustRead(t, f)
	for i := 1; i <= 3; i++ {
		s.Resources[fmt.Sprintf("member%d", i)] = sampleResource(i)
	}
	s.Pending["member4"] = &Pending{Operation: OpCreate, Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{"name":"x"}`), Since: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	mustWrite(t, f, s)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestTruncatedStateRefusedAtEveryLength: a state file cut short at any
// byte (a crash of an editor, a copy that ran out of space) is refused as
// empty or truncated, naming the file, and a File neither reads nor
// overwrites it.
func TestTruncatedStateRefusedAtEveryLength(t *testing.T) {
	path, good := goodStateFile(t)
	doc := bytes.TrimRight(good, "\n")
	for n := 0; n < len(doc); n++ {
		_, err := Parse(good[:n])
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse of the first %d of %d bytes: %v, want a *ParseError", n, len(good), err)
		}
		if !strings.Contains(pe.Problem, "is truncated") && !strings.Contains(pe.Problem, "is empty") {
			t.Errorf("Parse of the first %d bytes: %q, want it to say truncated or empty", n, pe.Problem)
		}
	}
	// Through the file backend, at a few lengths.
	for _, n := range []int{0, 1, len(doc) / 3, len(doc) / 2, len(doc) - 1} {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			if err := os.WriteFile(path, good[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			f := NewFile(path)
			_, err := f.Read(context.Background())
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Read: %v, want an *InvalidError naming %s", err, path)
			}
			if err := f.Write(context.Background(), New()); err == nil {
				t.Fatal("Write over a truncated state succeeded")
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, good[:n]) {
				t.Fatalf("the truncated state was changed to %q", got)
			}
		})
	}
}

// TestBackupHoldsLastGoodState: after a run has written, the state before
// that run is in the backup; when the state is then found corrupted the
// refusal names the backup, and the backup restores the last good state.
func TestBackupHoldsLastGoodState(t *testing.T) {
	path, first := goodStateFile(t)
	run2 := NewFile(path)
	s := mustRead(t, run2)
	s.Resources["member9"] = sampleResource(9)
	mustWrite(t, run2, s)
	if backup, err := os.ReadFile(run2.BackupPath()); err != nil || !bytes.Equal(backup, first) {
		t.Fatalf("backup = %q, %v; want the state before the run", backup, err)
	}
	second, _ := os.ReadFile(path)

	// The state is corrupted (here: half of it overwritten with garbage).
	corrupt := append(bytes.Clone(second[:len(second)/2]), randomBytes(len(second)/2, 7)...)
	if err := os.WriteFile(path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	run3 := NewFile(path)
	_, err := run3.Read(context.Background())
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Backup != run3.BackupPath() || !strings.Contains(err.Error(), run3.BackupPath()) {
		t.Fatalf("Read of the corrupted state: %v, want an *InvalidError naming the backup", err)
	}
	if err := run3.Write(context.Background(), s); err == nil {
		t.Fatal("Write over the corrupted state succeeded")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, corrupt) {
		t.Fatal("the corrupted state was changed")
	}
	if backup, _ := os.ReadFile(run3.BackupPath()); !bytes.Equal(backup, first) {
		t.Fatal("the backup was changed by the refused run")
	}

	// Restoring the backup gives the last good state of an earlier run.
	if err := os.Rename(run3.BackupPath(), path); err != nil {
		t.Fatal(err)
	}
	restored := mustRead(t, NewFile(path))
	if len(restored.Resources) != 3 || restored.Serial != 1 {
		t.Errorf("restored state: serial %d with %d resources, want serial 1 with 3", restored.Serial, len(restored.Resources))
	}
}

// fillDisk writes zeros to name in dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = io.Copy(f, io.LimitReader(zeros{}, 1<<30))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	return path
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// dirNames lists the names in dir but the filler.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "filler" {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestFullDiskLosesNothingRecorded fills a small tmpfs holding the state
// and makes the backend write: the write fails with an error naming the
// state and ENOSPC; the state file is the one written before, byte for
// byte, and parses with everything recorded before; no temporary file is
// left; and once space is freed, the next write succeeds with everything.
func TestFullDiskLosesNothingRecorded(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// newRun: the write that meets the full disk is the first of a new
		// run (a new File), which backs the state up first.
		newRun bool
		want   string
	}{
		{name: "write during a run", want: "write state"},
		{name: "first write of a run, with its backup", newRun: true, want: "back up state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testfs.Tmpfs(t, 256<<10)
			path := filepath.Join(dir, "state.json")
			f := NewFile(path)
			rec := NewRecorder(f, mustRead(t, f))
			t.Cleanup(func() { rec.Close(ctx) })
			for i := 1; i <= 3; i++ {
				rec.SetResource(fmt.Sprintf("member%d", i), sampleResource(i))
			}
			rec.SetPending("member4", &Pending{Operation: OpCreate, Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`)})
			if err := rec.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			recorded := rec.Snapshot()
			if tt.newRun {
				if err := rec.Close(ctx); err != nil {
					t.Fatal(err)
				}
				f = NewFile(path)
				rec = NewRecorder(f, mustRead(t, f))
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			filesBefore := dirNames(t, dir)

			filler := fillDisk(t, dir)
			rec.SetResource("member5", sampleResource(5))
			rec.ClearPending("member4")
			err = rec.Sync(ctx)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("Sync on a full disk: %v, want ENOSPC from %q naming %s", err, tt.want, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Fatalf("the state file changed after a failed write:\n%s\nwas\n%s", after, before)
			}
			got := mustRead(t, NewFile(path))
			if !reflect.DeepEqual(got.Resources, recorded.Resources) || !reflect.DeepEqual(slices.Sorted(maps.Keys(got.Pending)), []string{"member4"}) {
				t.Fatalf("the state on disk holds %v pending %v, want what was recorded before", slices.Sorted(maps.Keys(got.Resources)), slices.Sorted(maps.Keys(got.Pending)))
			}
			if names := dirNames(t, dir); !reflect.DeepEqual(names, filesBefore) {
				t.Fatalf("the failed write left %v (before: %v)", names, filesBefore)
			}
			// The change is kept in memory, for the next write.
			if snap := rec.Snapshot(); snap.Resources["member5"] == nil || snap.Pending["member4"] != nil {
				t.Fatal("the recorder dropped the change that could not be written")
			}

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if err := rec.Sync(ctx); err != nil {
				t.Fatalf("Sync after space was freed: %v", err)
			}
			got = mustRead(t, NewFile(path))
			if want := []string{"member1", "member2", "member3", "member5"}; !reflect.DeepEqual(slices.Sorted(maps.Keys(got.Resources)), want) || len(got.Pending) != 0 {
				t.Fatalf("after space was freed the state holds %v pending %v, want %v", slices.Sorted(maps.Keys(got.Resources)), slices.Sorted(maps.Keys(got.Pending)), want)
			}
			if tt.newRun {
				if backup, err := os.ReadFile(f.BackupPath()); err != nil || !bytes.Equal(backup, before) {
					t.Errorf("backup = %q, %v; want the state before the run", backup, err)
				}
			}
			// Close says that a write failed on the way, though the state
			// is complete now.
			if err := rec.Close(ctx); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "the state is complete") {
				t.Errorf("Close: %v, want the earlier ENOSPC, saying the state is complete", err)
			}
		})
	}
}
