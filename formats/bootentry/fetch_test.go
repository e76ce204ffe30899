package bootentry_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// newRecord puts an entry with an extra archive and returns its fetch
// record directory.
func newRecord(t *testing.T) string {
	t.Helper()
	s := bootentry.Store{Dir: t.TempDir()}
	v := put(t, s, entry(""), []byte("secret"))
	return v.FetchDir()
}

func scriptFetch(addr string) bootentry.FetchEvent {
	return bootentry.FetchEvent{Address: addr, Protocol: "tftp", Time: time.Now().UTC()}
}

// TestFetchDirLayout: a version with an extra archive has an empty fetch
// record directory of mode 0770 (whatever the umask), at FetchDirOf; one
// without has none.
func TestFetchDirLayout(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	v := put(t, s, entry(""), []byte("secret"))
	if want := bootentry.FetchDirOf(dir, mac, v.ID); v.FetchDir() != want {
		t.Errorf("FetchDir = %s, FetchDirOf = %s", v.FetchDir(), want)
	}
	fi, err := os.Lstat(v.FetchDir())
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o770 {
		t.Fatalf("fetch record directory: %v, %v; want a directory of mode 0770", fi, err)
	}
	if names, _ := os.ReadDir(v.FetchDir()); len(names) != 0 {
		t.Errorf("a new fetch record holds %v", names)
	}
	noExtra := put(t, s, entry("other"), nil)
	if noExtra.FetchDir() != "" {
		t.Errorf("a version without extra has FetchDir %q", noExtra.FetchDir())
	}
	if _, err := os.Lstat(filepath.Join(noExtra.Dir, bootentry.FetchDirName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a version without extra has a fetch record: %v", err)
	}
}

// TestClaimOnce: of many clients claiming a version at once, exactly one
// claim is written, and every caller is told that one; the claim's file
// has mode 0640 whatever the umask.
func TestClaimOnce(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := newRecord(t)
	const n = 32
	type result struct {
		claim bootentry.FetchEvent
		fresh bool
		err   error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, fresh, err := bootentry.Claim(dir, scriptFetch(fmt.Sprintf("192.0.2.%d", i+1)))
			results[i] = result{c, fresh, err}
		})
	}
	wg.Wait()
	fresh := 0
	winner, err := bootentry.ReadClaim(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("claim %d: %v", i, r.err)
		}
		if r.fresh {
			fresh++
		}
		if r.claim.Address != winner.Address || r.claim.Kind != bootentry.EventScript {
			t.Errorf("claim %d was told %+v, the claim is %+v", i, r.claim, winner)
		}
	}
	if fresh != 1 {
		t.Errorf("%d claims were written, want 1", fresh)
	}
	fi, err := os.Stat(filepath.Join(dir, "claim"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("claim: %v, %v; want mode 0640", fi, err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("the record holds %v, want the claim alone (no temporary files)", names)
	}
	again, fresh2, err := bootentry.Claim(dir, scriptFetch("198.51.100.1"))
	if err != nil || fresh2 || again.Address != winner.Address {
		t.Errorf("a later claim: %+v, fresh %v, %v; want the first claim", again, fresh2, err)
	}
}

// TestFetchEvents: events are read back in order, with the claim and the
// seal; a full record takes no more events and says it is full.
func TestFetchEvents(t *testing.T) {
	dir := newRecord(t)
	if _, _, err := bootentry.Claim(dir, scriptFetch("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	events := []bootentry.FetchEvent{
		{Kind: bootentry.EventServed, Address: "192.0.2.1", Protocol: "tftp"},
		{Kind: bootentry.EventScript, Address: "192.0.2.9", Protocol: "http"},
		{Kind: bootentry.EventRefused, Address: "192.0.2.9", Protocol: "http", Reason: "not its archive"},
	}
	for _, ev := range events {
		ev.Time = time.Now().UTC()
		if err := bootentry.AppendEvent(dir, ev); err != nil {
			t.Fatal(err)
		}
	}
	sealedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for range 2 { // sealing twice is sealing once
		if err := bootentry.Seal(dir, sealedAt); err != nil {
			t.Fatal(err)
		}
	}
	r, err := bootentry.ReadFetchRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Claim == nil || r.Claim.Address != "192.0.2.1" || !r.Sealed || !r.SealedAt.Equal(sealedAt) || r.Full {
		t.Fatalf("record = %+v", r)
	}
	if len(r.Events) != len(events) {
		t.Fatalf("%d events read back, want %d: %+v", len(r.Events), len(events), r.Events)
	}
	for i, ev := range r.Events {
		if ev.Kind != events[i].Kind || ev.Address != events[i].Address || ev.Reason != events[i].Reason || ev.Time.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, ev, events[i])
		}
	}

	// Fill it.
	flood := bootentry.FetchEvent{Kind: bootentry.EventRefused, Address: "192.0.2.66", Protocol: "tftp", Time: time.Now(), Reason: strings.Repeat("x", 200)}
	var err2 error
	for i := 0; i < bootentry.MaxFetchEvents/100 && err2 == nil; i++ {
		err2 = bootentry.AppendEvent(dir, flood)
	}
	if !errors.Is(err2, bootentry.ErrRecordFull) {
		t.Fatalf("appending past the limit: %v, want ErrRecordFull", err2)
	}
	fi, err := os.Stat(filepath.Join(dir, "events"))
	if err != nil || fi.Size() > bootentry.MaxFetchEvents {
		t.Errorf("events: %v, %v; want at most %d bytes", fi, err, bootentry.MaxFetchEvents)
	}
	if r, err := bootentry.ReadFetchRecord(dir); err != nil || !r.Full {
		t.Errorf("a full record reads as full %v, %v", r != nil && r.Full, err)
	}
}

// TestFetchRecordRefusesLinksAndJunk: nothing of the record is followed
// through a symlink (the target stays untouched), and a record that is
// not one is an error, never read as clean.
func TestFetchRecordRefusesLinksAndJunk(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plant prepares the record directory; outside is a file the
		// record must not touch.
		plant func(t *testing.T, dir, outside string)
		// op is what must fail.
		op func(dir string) error
	}{
		{
			name:  "events is a symlink",
			plant: func(t *testing.T, dir, outside string) { symlink(t, outside, filepath.Join(dir, "events")) },
			op: func(dir string) error {
				return bootentry.AppendEvent(dir, bootentry.FetchEvent{Kind: bootentry.EventServed, Address: "192.0.2.1", Protocol: "tftp", Time: time.Now()})
			},
		},
		{
			name:  "claim is a symlink",
			plant: func(t *testing.T, dir, outside string) { symlink(t, outside, filepath.Join(dir, "claim")) },
			op: func(dir string) error {
				_, _, err := bootentry.Claim(dir, scriptFetch("192.0.2.1"))
				return err
			},
		},
		{
			name:  "sealed is a symlink",
			plant: func(t *testing.T, dir, outside string) { symlink(t, outside, filepath.Join(dir, "sealed")) },
			op:    func(dir string) error { _, err := bootentry.ReadFetchRecord(dir); return err },
		},
		{
			name: "the directory is a symlink",
			plant: func(t *testing.T, dir, outside string) {
				if err := os.Remove(dir); err != nil {
					t.Fatal(err)
				}
				symlink(t, filepath.Dir(outside), dir)
			},
			op: func(dir string) error { return bootentry.Seal(dir, time.Now()) },
		},
		{
			name: "an event line is not an event",
			plant: func(t *testing.T, dir, _ string) {
				if err := os.WriteFile(filepath.Join(dir, "events"), []byte("{\"kind\":\"served\",\"address\":\"192.0.2.1\"}\n{\"kind\":\"ser"), 0o640); err != nil {
					t.Fatal(err)
				}
			},
			op: func(dir string) error { _, err := bootentry.ReadFetchRecord(dir); return err },
		},
		{
			name: "the claim is not a claim",
			plant: func(t *testing.T, dir, _ string) {
				if err := os.WriteFile(filepath.Join(dir, "claim"), []byte("{}\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			},
			op: func(dir string) error { _, err := bootentry.ReadFetchRecord(dir); return err },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newRecord(t)
			outside := filepath.Join(t.TempDir(), "outside")
			if err := os.WriteFile(outside, []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, dir, outside)
			if err := tc.op(dir); err == nil {
				t.Fatal("succeeded, want an error")
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "untouched" {
				t.Errorf("the file outside the record is now %q (%v)", b, err)
			}
			if names, _ := os.ReadDir(filepath.Dir(outside)); len(names) != 1 {
				t.Errorf("files appeared outside the record: %v", names)
			}
		})
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}
