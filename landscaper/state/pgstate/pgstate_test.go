package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

func res(n int) *state.Resource {
	return &state.Resource{
		Type: "local.file", Provider: "local",
		Inputs:  json.RawMessage(fmt.Sprintf(`{"path":"/tmp/f%d","content":"<&>"}`, n)),
		Outputs: json.RawMessage(`{"id":"x"}`),
		Private: []byte{0, 1, 2},
	}
}

func TestReadEmptyDatabase(t *testing.T) {
	b := newBackend(t, newDatabase(t))
	s, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != state.FormatVersion || s.Lineage == "" || s.Serial != 0 || len(s.Resources) != 0 {
		t.Fatalf("not a new state: %+v", s)
	}
}

func TestSchemaVersionedAndPrivate(t *testing.T) {
	u := newDatabase(t)
	newBackend(t, u)
	// A second first use finds the schema and does not recreate it.
	newBackend(t, u)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions []int
	rows, _ := conn.Query(ctx, `SELECT version FROM landscaper_schema_version`)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || len(versions) != 1 || versions[0] != SchemaVersion {
		t.Fatalf("schema versions %v, %v", versions, err)
	}
	// Another role cannot read the tables.
	other := strings.Replace(u, testRole+":"+testPassword, otherRole+":other-pw", 1)
	oc, err := pgx.Connect(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close(ctx)
	for _, table := range []string{"landscaper_state", "landscaper_lock", "landscaper_schema_version"} {
		var n int
		err := oc.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("role %s reading %s: %v, want permission denied", otherRole, table, err)
		}
	}
	// A newer schema is refused.
	if _, err := conn.Exec(ctx, `INSERT INTO landscaper_schema_version (version) VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, u); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	b := newBackend(t, u)
	s, err := b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Resources["a"] = res(1)
	s.Pending["b"] = &state.Pending{Operation: state.OpCreate, Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`), Since: time.Now().UTC().Truncate(time.Second)}
	if err := b.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	if s.Serial != 1 {
		t.Fatalf("serial after write %d", s.Serial)
	}
	if err := b.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	// A fresh backend reads what was written, byte for byte in the
	// recorded JSON values.
	got, err := newBackend(t, u).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lineage != s.Lineage || got.Serial != 2 {
		t.Fatalf("read lineage %s serial %d, want %s 2", got.Lineage, got.Serial, s.Lineage)
	}
	if string(got.Resources["a"].Inputs) != string(res(1).Inputs) || string(got.Resources["a"].Private) != "\x00\x01\x02" {
		t.Fatalf("resource changed: %+v", got.Resources["a"])
	}
	if p := got.Pending["b"]; p == nil || p.Operation != state.OpCreate || !p.Since.Equal(s.Pending["b"].Since) {
		t.Fatalf("pending: %+v", p)
	}
	// Named states are separate rows.
	named := newBackend(t, u+"&landscaper_state=staging")
	if named.Name() != "staging" {
		t.Fatalf("name %q", named.Name())
	}
	ns, err := named.Read(ctx)
	if err != nil || ns.Serial != 0 || len(ns.Resources) != 0 {
		t.Fatalf("named state: %+v, %v", ns, err)
	}
}

func TestStaleWriterRefused(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	a, b := newBackend(t, u), newBackend(t, u)
	s, _ := a.Read(ctx)
	if err := a.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	old, err := b.Read(ctx) // serial 1
	if err != nil {
		t.Fatal(err)
	}
	s.Resources["x"] = res(1)
	if err := a.Write(ctx, s); err != nil { // serial 2
		t.Fatal(err)
	}
	old.Resources["y"] = res(2)
	err = b.Write(ctx, old)
	if !errors.Is(err, state.ErrStale) {
		t.Fatalf("stale write: %v, want ErrStale", err)
	}
	// Even a fresh backend with an old serial is refused.
	c := newBackend(t, u)
	old.Serial = 1
	if err := c.Write(ctx, old); !errors.Is(err, state.ErrStale) {
		t.Fatalf("stale write by a fresh backend: %v", err)
	}
	got, _ := newBackend(t, u).Read(ctx)
	if got.Serial != 2 || got.Resources["y"] != nil || got.Resources["x"] == nil {
		t.Fatalf("stored state changed by a stale writer: serial %d %v", got.Serial, got.Resources)
	}
}

func TestLineageMismatchRefused(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	a := newBackend(t, u)
	s, _ := a.Read(ctx)
	if err := a.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	other := state.New()
	other.Serial = 1
	err := newBackend(t, u).Write(ctx, other)
	if !errors.Is(err, state.ErrStale) || !strings.Contains(err.Error(), "lineage") {
		t.Fatalf("write of another lineage: %v", err)
	}
	// A new state onto an existing one, by a backend that found none.
	fresh := newBackend(t, u)
	if err := fresh.Write(ctx, state.New()); !errors.Is(err, state.ErrStale) {
		t.Fatalf("write of a new state over an existing one: %v", err)
	}
}

func TestInvalidDocument(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	b := newBackend(t, u)
	s, _ := b.Read(ctx)
	if err := b.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE landscaper_state SET document = '{"version": 1, "lineage": ' WHERE name = 'default'`); err != nil {
		t.Fatal(err)
	}
	_, err = b.Read(ctx)
	var ie *InvalidError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "not a valid JSON") {
		t.Fatalf("read of invalid JSON: %v", err)
	}
	if err := b.Write(ctx, s); err == nil || !strings.Contains(err.Error(), "refusing to write") {
		t.Fatalf("write after an invalid read: %v", err)
	}
}

func TestDescribeHidesPassword(t *testing.T) {
	u := newDatabase(t)
	b := Open(u + "&landscaper_state=prod")
	d := b.Describe()
	if strings.Contains(d, testPassword) || !strings.Contains(d, testRole+"@127.0.0.1") || !strings.Contains(d, "landscaper_state=prod") {
		t.Fatalf("Describe() = %q", d)
	}
	if d := Open("postgres://u@h/db?password=hunter2").Describe(); strings.Contains(d, "hunter2") {
		t.Fatalf("Describe() = %q", d)
	}
	if !IsURL("postgresql://x") || !IsURL("postgres://x") || IsURL("/var/state.json") {
		t.Fatal("IsURL")
	}
	bad := Open("postgres://u:pw@h:notaport/db")
	if _, err := bad.Read(context.Background()); err == nil || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("invalid URL: %v", err)
	}
}

func info(cmd string) state.LockInfo {
	return state.LockInfo{PID: os.Getpid(), Host: "host-" + cmd, Command: cmd, Since: time.Now().UTC().Truncate(time.Second)}
}

func TestLockRefusesAtOnce(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	a, b := newBackend(t, u), newBackend(t, u)
	unlock, err := a.Lock(ctx, info("apply-a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.Lock(ctx, info("apply-b"), 0)
	var le *state.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("refusal took %v", time.Since(start))
	}
	if le.Holder.PID != os.Getpid() || le.Holder.Host != "host-apply-a" || le.Holder.Command != "apply-a" || le.Holder.Since.IsZero() {
		t.Fatalf("holder %+v", le.Holder)
	}
	if strings.Contains(le.Error(), testPassword) || !strings.Contains(le.Error(), "apply-a") {
		t.Fatalf("message %q", le.Error())
	}
	// The same backend is refused as well: one writer at a time.
	if _, err := a.Lock(ctx, info("apply-a2"), 0); !errors.As(err, &le) {
		t.Fatalf("relock by the same backend: %v", err)
	}
	// Another state in the same database is not locked.
	u2, err := b.Lock(ctx, info("x"), 0)
	if err == nil {
		t.Fatal("locked twice")
	}
	other := newBackend(t, u+"&landscaper_state=other")
	if u2, err = other.Lock(ctx, info("other"), 0); err != nil {
		t.Fatalf("lock of another state: %v", err)
	}
	if err := u2(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil { // idempotent
		t.Fatal(err)
	}
	u3, err := b.Lock(ctx, info("apply-b"), 0)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u3()
}

func TestLockWaitsForUnlock(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	a, b := newBackend(t, u), newBackend(t, u)
	unlock, err := a.Lock(ctx, info("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// A short timeout expires with the holder named.
	start := time.Now()
	_, err = b.Lock(ctx, info("b"), 300*time.Millisecond)
	var le *state.LockedError
	if !errors.As(err, &le) || le.Holder.Command != "a" {
		t.Fatalf("lock with a short timeout: %v", err)
	}
	// It waited (a lower bound only: a loaded machine makes it slower,
	// never faster).
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("the 300 ms timeout expired after %v", d)
	}
	// A cancelled context ends the wait (long enough to connect first,
	// however loaded the machine).
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := b.Lock(cctx, info("b"), time.Minute); !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock with a cancelled context: %v", err)
	}
	// A longer timeout succeeds once the holder unlocks.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(400 * time.Millisecond)
		if err := unlock(); err != nil {
			t.Error(err)
		}
	}()
	start = time.Now()
	ub, err := b.Lock(ctx, info("b"), 30*time.Second)
	wg.Wait()
	if err != nil {
		t.Fatalf("waiting lock: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("waited %v", d)
	}
	if err := ub(); err != nil {
		t.Fatal(err)
	}
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	b := newBackend(t, u)
	holder := startHolder(t, u)
	_, err := b.Lock(ctx, info("b"), 0)
	var le *state.LockedError
	if !errors.As(err, &le) || le.Holder.PID != holder.Process.Pid || le.Holder.Host != "helper-host" || le.Holder.Command != "lock-holder-helper" {
		t.Fatalf("lock held by a child: %v", err)
	}
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	holder.Wait()
	unlock, err := b.Lock(ctx, info("b"), 30*time.Second)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	defer unlock()
	// The dead holder's record was replaced.
	c := newBackend(t, u)
	if _, err := c.Lock(ctx, info("c"), 0); !errors.As(err, &le) || le.Holder.Command != "b" {
		t.Fatalf("holder after takeover: %v", err)
	}
}

func TestLockReleasedWhenConnectionEnds(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	a, b := newBackend(t, u), newBackend(t, u)
	if _, err := a.Lock(ctx, info("a"), 0); err != nil {
		t.Fatal(err)
	}
	// The server ends the holder's session (as when its host or network
	// goes away): the lock goes with it, and the stale record is not
	// reported as the holder.
	conn, err := pgx.Connect(ctx, adminURL(strings.TrimPrefix(u[strings.LastIndex(u, "/"):strings.Index(u, "?")], "/")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the holder: %d, %v", n, err)
	}
	unlock, err := b.Lock(ctx, info("b"), 30*time.Second)
	if err != nil {
		t.Fatalf("lock after the holder's connection ended: %v", err)
	}
	unlock()
}

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	b := newBackend(t, u)
	unlock, err := b.Lock(ctx, info("apply"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	s, err := b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := state.NewRecorder(b, s)
	const n = 1000
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				r.SetResource(fmt.Sprintf("r%04d", i), res(i))
			}
		}()
	}
	wg.Wait()
	// Pending records, each made durable before the next (many writes).
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("r%04d", i)
		r.SetPending(name, &state.Pending{Operation: state.OpUpdate, Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`), Since: time.Now()})
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		r.ClearPending(name)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := newBackend(t, u).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Resources) != n {
		t.Fatalf("%d resources stored, want %d", len(got.Resources), n)
	}
	for i := 0; i < n; i++ {
		if got.Resources[fmt.Sprintf("r%04d", i)] == nil {
			t.Fatalf("r%04d missing", i)
		}
	}
	if len(got.Pending) != 0 {
		t.Fatalf("pending left: %v", got.Pending)
	}
	if got.Serial < 20 || got.Serial > n+40 {
		t.Fatalf("serial %d", got.Serial)
	}
	t.Logf("%d resources in %d writes", n, got.Serial)
}

// A lock record not written by the session that holds the lock (left by a
// dead holder, before the new holder has written its own) is read again
// before it is reported; the current holder's record is reported at once.
func TestLockRecordOfCurrentHolder(t *testing.T) {
	ctx := context.Background()
	u := newDatabase(t)
	a, b := newBackend(t, u), newBackend(t, u)
	unlock, err := a.Lock(ctx, info("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var le *state.LockedError
	start := time.Now()
	if _, err := b.Lock(ctx, info("b"), 0); !errors.As(err, &le) || le.Holder.Command != "a" {
		t.Fatalf("lock: %v", err)
	}
	fresh := time.Since(start)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE landscaper_lock SET backend_pid = 0, command = 'dead'`); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := b.Lock(ctx, info("b"), 0); !errors.As(err, &le) || le.Holder.Command != "dead" {
		t.Fatalf("lock: %v", err)
	}
	stale := time.Since(start)
	if stale < 150*time.Millisecond || fresh >= stale {
		t.Fatalf("refusal took %v with the holder's record, %v with a stale one", fresh, stale)
	}
}
