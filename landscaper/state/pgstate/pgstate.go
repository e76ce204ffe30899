// Package pgstate is a state.Backend that keeps deployment states in a
// PostgreSQL database, so that a team can share them.
//
// Each state is one row of the table landscaper_state, keyed by a name
// ("default" unless the URL carries ?landscaper_state=NAME), holding the
// JSON document together with its lineage and serial. The schema is
// created on first use and versioned in landscaper_schema_version.
//
// What is stored, and who can read it: the state document holds every
// resource's inputs, outputs and private data, including values marked
// sensitive. The tables are created with all privileges revoked from
// PUBLIC, so only their owner (the role that first used the database) and
// superusers can read them; grant access to other roles explicitly.
//
// The writer lock is a session-level advisory lock held on a connection
// of its own for as long as the lock is held: when the holder's process
// dies, its connection closes and PostgreSQL releases the lock. Who holds
// it is recorded in the table landscaper_lock.
package pgstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// SchemaVersion is the version of the database schema this package
// creates and uses.
const SchemaVersion = 1

// DefaultName is the name of the state when the URL does not name one.
const DefaultName = "default"

// NameParam is the URL query parameter that names the state; it is
// removed from the URL before connecting.
const NameParam = "landscaper_state"

// Advisory lock keys are pairs of int4: the first says what the lock is
// for, the second (for a state lock) is derived from the state's name.
const (
	lockClassState  int32 = 0x4c4e4453 // "LNDS"
	lockClassSchema int32 = 0x4c4e4443 // "LNDC"
)

// IsURL reports whether s names a PostgreSQL database rather than a file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Backend is a state.Backend in PostgreSQL. Like state.File, it remembers
// the lineage and serial of the state it last read or wrote and refuses
// (state.ErrStale) to overwrite a state that another writer has changed
// since. A Backend is safe for concurrent use.
type Backend struct {
	name     string
	describe string
	cfg      *pgxpool.Config
	cfgErr   error

	connMu sync.Mutex
	pool   *pgxpool.Pool

	mu      sync.Mutex
	seen    bool
	exists  bool
	lineage string
	serial  uint64
	broken  error
}

var _ state.Backend = (*Backend)(nil)

// Open returns a Backend for the database at rawURL without connecting: it
// connects, and creates the schema if needed, on first use. An invalid URL
// is reported by every method.
func Open(rawURL string) *Backend {
	b := &Backend{name: DefaultName}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Never repeat the URL: it may hold a password.
		b.describe = "postgres database (invalid URL)"
		b.cfgErr = fmt.Errorf("state database URL is invalid: %w", redactURLError(err))
		return b
	}
	q := u.Query()
	if n := q.Get(NameParam); n != "" {
		b.name = n
	}
	q.Del(NameParam)
	u.RawQuery = q.Encode()
	b.describe = describe(u, b.name)
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		b.cfgErr = fmt.Errorf("state database %s: %w", b.describe, err)
		return b
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "landscaper"
	}
	b.cfg = cfg
	return b
}

// New returns a Backend for the database at rawURL, connecting to it and
// creating the schema if the database has none.
func New(ctx context.Context, rawURL string) (*Backend, error) {
	b := Open(rawURL)
	if _, err := b.connect(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// describe returns u without its password (in the user info or the
// query), naming the state if it is not the default one.
func describe(u *url.URL, name string) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	q := c.Query()
	q.Del("password")
	if name != DefaultName {
		q.Set(NameParam, name)
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// Describe returns the database URL without its password.
func (b *Backend) Describe() string { return b.describe }

// Name returns the name of the state in the database.
func (b *Backend) Name() string { return b.name }

// Close closes the Backend's connections. Locks taken are not released by
// it: each is held on a connection of its own until unlocked.
func (b *Backend) Close() {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.pool != nil {
		b.pool.Close()
		b.pool = nil
	}
}

// connect returns the pool, connecting and creating the schema first if
// this Backend has not yet done so.
func (b *Backend) connect(ctx context.Context) (*pgxpool.Pool, error) {
	if b.cfgErr != nil {
		return nil, b.cfgErr
	}
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.pool != nil {
		return b.pool, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, b.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect to state database %s: %w", b.describe, err)
	}
	if err := ensureSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("state database %s: %w", b.describe, err)
	}
	b.pool = pool
	return pool, nil
}

// schema creates version 1 of the schema. The tables are readable by
// their owner only: state documents hold secrets.
var schema = []string{
	`CREATE TABLE landscaper_state (
		name text PRIMARY KEY,
		lineage text NOT NULL,
		serial bigint NOT NULL,
		document text NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now()
	)`,
	`CREATE TABLE landscaper_lock (
		name text PRIMARY KEY,
		pid integer NOT NULL,
		host text NOT NULL,
		command text NOT NULL,
		since timestamptz NOT NULL,
		backend_pid integer NOT NULL
	)`,
	`REVOKE ALL ON landscaper_state FROM PUBLIC`,
	`REVOKE ALL ON landscaper_lock FROM PUBLIC`,
}

// ensureSchema creates or checks the schema, under a transaction-level
// advisory lock so that two first users do not race.
func ensureSchema(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockClassSchema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		var present bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('landscaper_schema_version') IS NOT NULL`).Scan(&present); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		version := 0
		if present {
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM landscaper_schema_version`).Scan(&version); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
		}
		switch {
		case version == SchemaVersion:
			return nil
		case version > SchemaVersion:
			return fmt.Errorf("the database schema has version %d, newer than this landscaper's (%d); upgrade landscaper", version, SchemaVersion)
		case version != 0:
			return fmt.Errorf("the database schema has unknown version %d (this landscaper uses version %d)", version, SchemaVersion)
		}
		stmts := append([]string{
			`CREATE TABLE IF NOT EXISTS landscaper_schema_version (version integer PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())`,
			`REVOKE ALL ON landscaper_schema_version FROM PUBLIC`,
		}, schema...)
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO landscaper_schema_version (version) VALUES ($1)`, SchemaVersion); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		return nil
	})
}

// InvalidError is returned when a stored state exists but cannot be used.
// Such a state is never overwritten.
type InvalidError struct {
	// Where is the database (Describe) and Name the state's name.
	Where, Name string
	// Problem says what is wrong.
	Problem string
	Err     error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("state %q in %s %s; refusing to use or overwrite it", e.Name, e.Where, e.Problem)
}

func (e *InvalidError) Unwrap() error { return e.Err }

func (b *Backend) invalid(problem string, err error) *InvalidError {
	return &InvalidError{Where: b.describe, Name: b.name, Problem: problem, Err: err}
}

// row is what a look at the state's row found.
type row struct {
	exists  bool
	lineage string
	serial  uint64
}

func (b *Backend) remember(r row) {
	b.seen, b.exists, b.lineage, b.serial = true, r.exists, r.lineage, r.serial
}

// Read returns the stored state, or state.New() if there is none.
func (b *Backend) Read(ctx context.Context) (*state.State, error) {
	pool, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var (
		lineage string
		serial  int64
		doc     string
	)
	err = pool.QueryRow(ctx, `SELECT lineage, serial, document FROM landscaper_state WHERE name = $1`, b.name).Scan(&lineage, &serial, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		b.remember(row{})
		b.broken = nil
		return state.New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %q from %s: %w", b.name, b.describe, err)
	}
	s, err := b.decode([]byte(doc))
	if err == nil && (s.Lineage != lineage || s.Serial != uint64(serial)) {
		err = b.invalid(fmt.Sprintf("holds a document of lineage %s serial %d in a row of lineage %s serial %d", s.Lineage, s.Serial, lineage, serial), nil)
	}
	if err != nil {
		b.broken = err
		return nil, err
	}
	b.remember(row{exists: true, lineage: lineage, serial: uint64(serial)})
	b.broken = nil
	return s, nil
}

// decode parses and validates a stored document.
func (b *Backend) decode(data []byte) (*state.State, error) {
	if len(bytes.TrimSpace(data)) > 0 && !json.Valid(data) {
		return nil, b.invalid("is not a valid JSON state document (corrupted?)", nil)
	}
	s, err := state.Parse(data)
	var pe *state.ParseError
	if errors.As(err, &pe) {
		return nil, b.invalid(pe.Problem, pe.Err)
	}
	return s, err
}

// Write stores s in one transaction and increases s.Serial by one. It
// refuses (state.ErrStale) if the stored state's lineage is not s.Lineage,
// or its serial is not s.Serial or not the one this Backend last read or
// wrote; and it refuses while the stored state could not be read.
func (b *Backend) Write(ctx context.Context, s *state.State) error {
	if s == nil {
		return fmt.Errorf("write state %q to %s: no state given", b.name, b.describe)
	}
	if s.Version != state.FormatVersion {
		return fmt.Errorf("write state %q to %s: the state has format version %d, not %d", b.name, b.describe, s.Version, state.FormatVersion)
	}
	if s.Lineage == "" {
		return fmt.Errorf("write state %q to %s: the state has no lineage", b.name, b.describe)
	}
	pool, err := b.connect(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken != nil {
		return fmt.Errorf("refusing to write state %q to %s: %w", b.name, b.describe, b.broken)
	}
	out := *s
	out.Serial++
	if out.Resources == nil {
		out.Resources = map[string]*state.Resource{}
	}
	doc, err := encode(&out)
	if err != nil {
		return fmt.Errorf("write state %q to %s: %w", b.name, b.describe, err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			d      row
			serial int64
		)
		err := tx.QueryRow(ctx, `SELECT lineage, serial FROM landscaper_state WHERE name = $1 FOR UPDATE`, b.name).Scan(&d.lineage, &serial)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			d.exists, d.serial = true, uint64(serial)
		}
		if err := b.check(d, s); err != nil {
			return err
		}
		if !d.exists {
			tag, err := tx.Exec(ctx, `INSERT INTO landscaper_state (name, lineage, serial, document) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
				b.name, out.Lineage, int64(out.Serial), doc)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("%w: state %q in %s was created by another writer meanwhile", state.ErrStale, b.name, b.describe)
			}
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE landscaper_state SET serial = $2, document = $3, updated_at = now() WHERE name = $1`,
			b.name, int64(out.Serial), doc)
		return err
	})
	if err != nil {
		if errors.Is(err, state.ErrStale) {
			return err
		}
		return fmt.Errorf("write state %q to %s: %w", b.name, b.describe, err)
	}
	s.Serial = out.Serial
	b.remember(row{exists: true, lineage: s.Lineage, serial: s.Serial})
	return nil
}

// check refuses to replace d by s unless s descends from d.
func (b *Backend) check(d row, s *state.State) error {
	where := fmt.Sprintf("state %q in %s", b.name, b.describe)
	if b.seen {
		switch {
		case b.exists && !d.exists:
			return fmt.Errorf("%w: %s was removed since this process read or wrote it (at serial %d)", state.ErrStale, where, b.serial)
		case !b.exists && d.exists:
			return fmt.Errorf("%w: %s was created (serial %d) since this process found it missing", state.ErrStale, where, d.serial)
		case d.exists && (d.lineage != b.lineage || d.serial != b.serial):
			return fmt.Errorf("%w: %s is at serial %d (lineage %s); this process last read or wrote serial %d (lineage %s)", state.ErrStale, where, d.serial, d.lineage, b.serial, b.lineage)
		}
	}
	if !d.exists {
		return nil
	}
	if d.lineage != s.Lineage {
		return fmt.Errorf("%w: %s has lineage %s, not %s; refusing to replace another state", state.ErrStale, where, d.lineage, s.Lineage)
	}
	if d.serial != s.Serial {
		return fmt.Errorf("%w: %s is at serial %d, but the state to write was read at serial %d", state.ErrStale, where, d.serial, s.Serial)
	}
	return nil
}

// encode returns s as compact JSON, keeping recorded JSON values byte for
// byte.
func encode(s *state.State) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// lockKey is the second advisory lock key of the state name.
func lockKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int32(h.Sum32() & 0x7fffffff)
}

// Lock takes the writer lock: a session-level advisory lock held on a
// connection of its own until the returned func is called or that
// connection ends (as when this process dies). The holder's info is
// recorded in landscaper_lock so that a refused writer can say who holds
// it. With timeout 0 Lock fails at once with a *state.LockedError if
// another holds the lock; otherwise it retries (every 50ms, backing off to
// every second) until the timeout passes or ctx is done.
func (b *Backend) Lock(ctx context.Context, info state.LockInfo, timeout time.Duration) (func() error, error) {
	if _, err := b.connect(ctx); err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, b.cfg.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("lock state %q in %s: connect: %w", b.name, b.describe, err)
	}
	fail := func(err error) (func() error, error) {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
		return nil, err
	}
	key := lockKey(b.name)
	deadline := time.Now().Add(timeout)
	delay := 50 * time.Millisecond
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClassState, key).Scan(&got); err != nil {
			if ctx.Err() != nil {
				return fail(fmt.Errorf("lock state %q in %s: %w", b.name, b.describe, ctx.Err()))
			}
			return fail(fmt.Errorf("lock state %q in %s: %w", b.name, b.describe, err))
		}
		if got {
			break
		}
		wait := min(delay, time.Until(deadline))
		if timeout <= 0 || wait <= 0 {
			return fail(b.lockedError(ctx, conn))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			lerr := b.lockedError(context.Background(), conn)
			return fail(fmt.Errorf("%w (gave up waiting: %w)", lerr, ctx.Err()))
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
	_, err = conn.Exec(ctx, `INSERT INTO landscaper_lock (name, pid, host, command, since, backend_pid)
		VALUES ($1, $2, $3, $4, $5, pg_backend_pid())
		ON CONFLICT (name) DO UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host, command = EXCLUDED.command,
			since = EXCLUDED.since, backend_pid = EXCLUDED.backend_pid`,
		b.name, int32(info.PID), info.Host, info.Command, info.Since)
	if err != nil {
		return fail(fmt.Errorf("lock state %q in %s: record the holder: %w", b.name, b.describe, err))
	}
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := conn.Exec(cctx, `DELETE FROM landscaper_lock WHERE name = $1 AND backend_pid = pg_backend_pid()`, b.name)
			if err == nil {
				_, err = conn.Exec(cctx, `SELECT pg_advisory_unlock($1, $2)`, lockClassState, key)
			}
			// Closing the connection releases the lock in any case.
			if cerr := conn.Close(cctx); err == nil {
				err = cerr
			}
			if err != nil {
				uerr = fmt.Errorf("unlock state %q in %s: %w", b.name, b.describe, err)
			}
		})
		return uerr
	}, nil
}

// lockedError reads who holds the lock. The holder records itself just
// after taking the lock, and a holder that died may have left its record
// behind, so a record is trusted only if it was written by the session
// that holds the advisory lock now; failing that it is read again a few
// times.
func (b *Backend) lockedError(ctx context.Context, conn *pgx.Conn) *state.LockedError {
	e := &state.LockedError{Where: b.describe}
	for try := 0; try < 10; try++ {
		var (
			pid     int32
			current bool
		)
		err := conn.QueryRow(ctx, `SELECT l.pid, l.host, l.command, l.since,
				coalesce(l.backend_pid IN (SELECT k.pid FROM pg_locks k WHERE k.locktype = 'advisory'
					AND k.classid::bigint = $2 AND k.objid::bigint = $3 AND k.objsubid = 2 AND k.granted), false)
			FROM landscaper_lock l WHERE l.name = $1`, b.name, int64(lockClassState), int64(lockKey(b.name))).
			Scan(&pid, &e.Holder.Host, &e.Holder.Command, &e.Holder.Since, &current)
		if err == nil {
			e.Holder.PID = int(pid)
			if current {
				return e
			}
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e.Holder.Command == "" {
		e.Holder = state.LockInfo{Command: "unknown holder"}
	}
	return e
}
