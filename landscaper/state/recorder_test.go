package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testBackend wraps a Backend, counting writes; before each write it waits
// for gate (if set) and fails while fail says so.
type testBackend struct {
	Backend
	writes atomic.Int64
	gate   chan struct{}
	mu     sync.Mutex
	fail   error
}

func (b *testBackend) Write(ctx context.Context, s *State) error {
	if b.gate != nil {
		<-b.gate
	}
	b.writes.Add(1)
	b.mu.Lock()
	err := b.fail
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.Backend.Write(ctx, s)
}

func (b *testBackend) setFail(err error) {
	b.mu.Lock()
	b.fail = err
	b.mu.Unlock()
}

func newRecorder(t testing.TB) (*Recorder, *testBackend, string) {
	path := statePath(t)
	f := NewFile(path)
	s, err := f.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBackend{Backend: f}
	return NewRecorder(tb, s), tb, path
}

func TestRecorderConcurrentChanges(t *testing.T) {
	r, tb, path := newRecorder(t)
	const workers, each = 20, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("r%d-%d", w, i)
				r.SetPending(name, &Pending{Operation: OpCreate, Type: "local.file", Inputs: json.RawMessage(`{}`)})
				r.SetResource(name, sampleResource(i))
				r.ClearPending(name)
			}
		})
	}
	wg.Wait()
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := mustRead(t, NewFile(path))
	if len(s.Resources) != workers*each || len(s.Pending) != 0 {
		t.Fatalf("file holds %d resources and %d pending, want %d and 0", len(s.Resources), len(s.Pending), workers*each)
	}
	changes, writes := 3*workers*each, tb.writes.Load()
	t.Logf("%d changes in %d writes", changes, writes)
	if writes >= int64(changes) {
		t.Errorf("%d writes for %d changes", writes, changes)
	}
	if s.Serial != uint64(writes) {
		t.Errorf("serial %d after %d writes", s.Serial, writes)
	}
	if snap := r.Snapshot(); snap.Serial != s.Serial || len(snap.Resources) != len(s.Resources) {
		t.Errorf("snapshot at serial %d with %d resources", snap.Serial, len(snap.Resources))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRecorderBatches checks that changes made while a write is in progress
// all go into the next write.
func TestRecorderBatches(t *testing.T) {
	r, tb, path := newRecorder(t)
	tb.gate = make(chan struct{})
	const n = 1000
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := range n / 10 {
				r.SetResource(fmt.Sprintf("r%d-%d", w, i), sampleResource(i))
			}
		})
	}
	wg.Wait()
	close(tb.gate)
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(mustRead(t, NewFile(path)).Resources); got != n {
		t.Fatalf("file holds %d resources, want %d", got, n)
	}
	// One write may have started with the first change; all the others
	// went into one more.
	if w := tb.writes.Load(); w > 2 {
		t.Errorf("%d writes for %d changes, want at most 2", w, n)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRecorderSyncWritesEverything checks that every Sync sees exactly the
// changes made before it on disk.
func TestRecorderSyncWritesEverything(t *testing.T) {
	r, tb, path := newRecorder(t)
	ctx := context.Background()
	// Nothing changed: Sync writes nothing.
	if err := r.Sync(ctx); err != nil || tb.writes.Load() != 0 {
		t.Fatalf("Sync without changes: %v, %d writes", err, tb.writes.Load())
	}
	for i := range 30 {
		name := fmt.Sprint(i)
		r.SetPending(name, &Pending{Operation: OpCreate, Type: "t", Inputs: json.RawMessage(`{}`)})
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		s := mustRead(t, NewFile(path))
		if s.Pending[name] == nil {
			t.Fatalf("pending %s not written before Sync returned", name)
		}
		r.SetResource(name, sampleResource(i))
		r.ClearPending(name)
		if i%3 == 0 {
			r.DeleteResource(fmt.Sprint(i - 1))
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		s = mustRead(t, NewFile(path))
		if s.Resources[name] == nil || s.Pending[name] != nil {
			t.Fatalf("resource %s not written before Sync returned", name)
		}
		if i%3 == 0 && s.Resources[fmt.Sprint(i-1)] != nil {
			t.Fatalf("deletion of %d not written", i-1)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRecorderCloseFlushes(t *testing.T) {
	r, _, path := newRecorder(t)
	for i := range 500 {
		r.SetResource(fmt.Sprint(i), sampleResource(i))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(mustRead(t, NewFile(path)).Resources); got != 500 {
		t.Fatalf("file holds %d resources after Close, want 500", got)
	}
	// Closing again returns the same; Sync after Close with unwritten
	// changes fails.
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.SetResource("late", sampleResource(1))
	if err := r.Sync(context.Background()); err == nil {
		t.Fatal("Sync after Close succeeded")
	}
}

func TestRecorderCopies(t *testing.T) {
	s := New()
	s.Resources["a"] = sampleResource(1)
	r := NewRecorder(&testBackend{Backend: NewFile(statePath(t))}, s)
	defer r.Close(context.Background())
	s.Resources["b"] = sampleResource(2) // not seen by r
	res := sampleResource(3)
	r.SetResource("c", res)
	res.Inputs[0] = 'X' // not seen by r
	snap := r.Snapshot()
	if len(snap.Resources) != 2 || snap.Resources["c"].Inputs[0] != '{' {
		t.Fatalf("recorder shares memory with its caller: %+v", snap.Resources)
	}
	snap.Resources["a"].Type = "changed"
	if r.Snapshot().Resources["a"].Type != "local.file" {
		t.Fatal("Snapshot shares memory with the recorder")
	}
}

func TestRecorderWriteErrorRetried(t *testing.T) {
	r, tb, path := newRecorder(t)
	ctx := context.Background()
	diskFull := errors.New("no space left on device")
	tb.setFail(diskFull)

	r.SetResource("a", sampleResource(1))
	if err := r.Sync(ctx); !errors.Is(err, diskFull) {
		t.Fatalf("Sync: %v, want the write error", err)
	}
	// Sync again retries, and fails again.
	w := tb.writes.Load()
	if err := r.Sync(ctx); !errors.Is(err, diskFull) {
		t.Fatalf("second Sync: %v, want the write error", err)
	}
	if tb.writes.Load() == w {
		t.Fatal("second Sync did not retry")
	}
	if r.Snapshot().Resources["a"] == nil {
		t.Fatal("in-memory state lost after a failed write")
	}

	// The disk has room again.
	tb.setFail(nil)
	r.SetResource("b", sampleResource(2))
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync after recovery: %v", err)
	}
	s := mustRead(t, NewFile(path))
	if s.Resources["a"] == nil || s.Resources["b"] == nil || s.Serial != 1 {
		t.Fatalf("file holds %d resources at serial %d", len(s.Resources), s.Serial)
	}
	// Close reports the earlier failure, and says the state is complete.
	err := r.Close(ctx)
	if !errors.Is(err, diskFull) || !strings.Contains(err.Error(), "later write succeeded") {
		t.Fatalf("Close: %v, want the first write error", err)
	}
}

func TestRecorderCloseFailing(t *testing.T) {
	r, tb, _ := newRecorder(t)
	diskFull := errors.New("no space left on device")
	tb.setFail(diskFull)
	r.SetResource("a", sampleResource(1))
	if err := r.Close(context.Background()); !errors.Is(err, diskFull) {
		t.Fatalf("Close: %v, want the write error", err)
	}
}

func TestRecorderStaleBackend(t *testing.T) {
	r, _, path := newRecorder(t)
	r.SetResource("a", sampleResource(1))
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Another writer takes over the state.
	f := NewFile(path)
	s := mustRead(t, f)
	mustWrite(t, f, s)
	r.SetResource("b", sampleResource(2))
	if err := r.Sync(context.Background()); !errors.Is(err, ErrStale) {
		t.Fatalf("Sync: %v, want ErrStale", err)
	}
	if err := r.Close(context.Background()); !errors.Is(err, ErrStale) {
		t.Fatalf("Close: %v, want ErrStale", err)
	}
}

func TestRecorderSyncContext(t *testing.T) {
	r, tb, _ := newRecorder(t)
	tb.gate = make(chan struct{})
	r.SetResource("a", sampleResource(1))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync: %v, want DeadlineExceeded", err)
	}
	close(tb.gate)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRecorder1000 records 1000 resources of about 300 bytes each in
// a state file, syncing after every 10.
func BenchmarkRecorder1000(b *testing.B) {
	res := func(i int) *Resource {
		return &Resource{
			Type:         "local.file",
			Provider:     "builtin",
			Inputs:       json.RawMessage(fmt.Sprintf(`{"path":"/srv/data/file-%06d.conf","content":"%s","mode":"0644"}`, i, strings.Repeat("x", 50))),
			Outputs:      json.RawMessage(fmt.Sprintf(`{"id":"file-%06d","sha256":"%064d"}`, i, i)),
			Dependencies: []string{"dir.data"},
		}
	}
	if n := len(must(json.Marshal(res(1)))); n < 280 || n > 340 {
		b.Fatalf("resource is %d bytes, want about 300", n)
	}
	ctx := context.Background()
	var writes int64
	for b.Loop() {
		b.StopTimer()
		tb := &testBackend{Backend: NewFile(statePath(b))}
		r := NewRecorder(tb, New())
		b.StartTimer()
		for i := range 1000 {
			r.SetResource(fmt.Sprintf("file.f%d", i), res(i))
			if i%10 == 9 {
				if err := r.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := r.Close(ctx); err != nil {
			b.Fatal(err)
		}
		writes += tb.writes.Load()
	}
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
