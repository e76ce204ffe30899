package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestCopy(t *testing.T) {
	ctx := context.Background()
	info := LockInfo{PID: 1, Host: "test", Command: "copy", Since: time.Now()}
	write := func(t *testing.T, b Backend, names ...string) *State {
		t.Helper()
		s, err := b.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			s.Resources[n] = &Resource{Type: "local.file", Provider: "local"}
		}
		if err := b.Write(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("into nothing, then again", func(t *testing.T) {
		dir := t.TempDir()
		from, to := NewFile(filepath.Join(dir, "a.json")), NewFile(filepath.Join(dir, "b.json"))
		src := write(t, from, "x", "y")
		if _, err := Copy(ctx, from, to, info, 0); err != nil {
			t.Fatal(err)
		}
		got, err := NewFile(filepath.Join(dir, "b.json")).Read(ctx)
		if err != nil || got.Lineage != src.Lineage || len(got.Resources) != 2 {
			t.Fatalf("copy: %+v, %v", got, err)
		}
		write(t, from, "z")
		if _, err := Copy(ctx, from, NewFile(filepath.Join(dir, "b.json")), info, 0); err != nil {
			t.Fatalf("second copy of a newer state: %v", err)
		}
		got, _ = NewFile(filepath.Join(dir, "b.json")).Read(ctx)
		if len(got.Resources) != 3 {
			t.Errorf("after the second copy: %d resources, want 3", len(got.Resources))
		}
	})
	t.Run("another lineage is refused", func(t *testing.T) {
		dir := t.TempDir()
		from, to := NewFile(filepath.Join(dir, "a.json")), NewFile(filepath.Join(dir, "b.json"))
		write(t, from, "x")
		write(t, to, "other")
		if _, err := Copy(ctx, from, to, info, 0); !errors.Is(err, ErrOtherState) {
			t.Fatalf("got %v, want ErrOtherState", err)
		}
	})
	t.Run("a newer destination is refused", func(t *testing.T) {
		dir := t.TempDir()
		from, to := NewFile(filepath.Join(dir, "a.json")), NewFile(filepath.Join(dir, "b.json"))
		write(t, from, "x")
		if _, err := Copy(ctx, from, to, info, 0); err != nil {
			t.Fatal(err)
		}
		to2 := NewFile(filepath.Join(dir, "b.json"))
		write(t, to2, "newer")
		write(t, to2, "newer2")
		if _, err := Copy(ctx, NewFile(filepath.Join(dir, "a.json")), NewFile(filepath.Join(dir, "b.json")), info, 0); !errors.Is(err, ErrStale) {
			t.Fatalf("got %v, want ErrStale", err)
		}
	})
	t.Run("an empty source is refused", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Copy(ctx, NewFile(filepath.Join(dir, "a.json")), NewFile(filepath.Join(dir, "b.json")), info, 0); err == nil {
			t.Fatal("copied an empty state")
		}
	})
}
