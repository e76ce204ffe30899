package state

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

func statePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "deploy", ".landscaper", "state.json")
}

func sampleResource(i int) *Resource {
	return &Resource{
		Type:             "local.file",
		Provider:         "builtin",
		Inputs:           json.RawMessage(fmt.Sprintf(`{"path":"/tmp/f%d","content":"<hello & world>"}`, i)),
		SensitiveInputs:  []resource.Path{resource.AttrPath("content")},
		Outputs:          json.RawMessage(fmt.Sprintf(`{"id":"f%d","size":%d}`, i, i)),
		SensitiveOutputs: []resource.Path{resource.AttrPath("secret", "k").Index(2)},
		Private:          []byte{0, 1, 2, byte(i)},
		Dependencies:     []string{"a", "b"},
		Tainted:          i%2 == 1,
		SchemaVersion:    int64(i),
	}
}

func mustRead(t testing.TB, f *File) *State {
	t.Helper()
	s, err := f.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return s
}

func mustWrite(t testing.TB, f *File, s *State) {
	t.Helper()
	if err := f.Write(context.Background(), s); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func TestNewLineage(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		l := newLineage()
		if !re.MatchString(l) {
			t.Fatalf("lineage %q is not a UUIDv4", l)
		}
		if seen[l] {
			t.Fatalf("lineage %q repeated", l)
		}
		seen[l] = true
	}
}

func TestCloneIsDeep(t *testing.T) {
	s := New()
	s.Resources["a"] = sampleResource(1)
	s.Pending["b"] = &Pending{Operation: OpCreate, Type: "t", Inputs: json.RawMessage(`{}`), SensitiveInputs: []resource.Path{resource.AttrPath("x")}}
	c := s.Clone()
	if !reflect.DeepEqual(s, c) {
		t.Fatal("clone differs")
	}
	c.Resources["a"].Inputs[0] = 'X'
	c.Resources["a"].SensitiveInputs[0][0].Name = "changed"
	c.Resources["a"].Private[0] = 9
	c.Resources["a"].Dependencies[0] = "z"
	c.Pending["b"].SensitiveInputs[0][0].Name = "changed"
	c.Resources["new"] = &Resource{}
	if !reflect.DeepEqual(s.Resources["a"], sampleResource(1)) || s.Pending["b"].SensitiveInputs[0][0].Name != "x" || len(s.Resources) != 1 {
		t.Fatal("changing the clone changed the original")
	}
}

func TestReadMissing(t *testing.T) {
	path := statePath(t)
	s := mustRead(t, NewFile(path))
	if s.Version != FormatVersion || s.Lineage == "" || s.Serial != 0 || s.Resources == nil || len(s.Resources) != 0 {
		t.Fatalf("Read of a missing file = %+v, want a new state", s)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read created the directory: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	s := mustRead(t, f)
	s.Resources["file.a"] = sampleResource(1)
	s.Resources["file.b"] = sampleResource(2)
	s.Pending["file.c"] = &Pending{Operation: OpUpdate, Type: "local.file", Provider: "builtin", Inputs: json.RawMessage(`{"x":[1,2,{"y":null}]}`), Since: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), SchemaVersion: 3}
	want := s.Clone()
	mustWrite(t, f, s)
	want.Serial = 1
	if s.Serial != 1 {
		t.Errorf("after the write s.Serial = %d, want 1", s.Serial)
	}
	for _, r := range []*File{f, NewFile(path)} {
		got := mustRead(t, r)
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("read back\n%s\nwant\n%s", gj, wj)
		}
	}
	// The JSON values are kept byte for byte (no HTML escaping).
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(`"content":"<hello & world>"`)) {
		t.Errorf("recorded inputs were re-encoded: %s", data)
	}
	checkMode(t, filepath.Dir(path), 0o700)
	checkMode(t, path, 0o600)
}

func TestSerialIncrements(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	s := mustRead(t, f)
	for i := 1; i <= 5; i++ {
		s.Resources[fmt.Sprint(i)] = sampleResource(i)
		mustWrite(t, f, s)
		if s.Serial != uint64(i) {
			t.Fatalf("serial %d after write %d", s.Serial, i)
		}
		if got := mustRead(t, NewFile(path)); got.Serial != uint64(i) || len(got.Resources) != i {
			t.Fatalf("on disk: serial %d with %d resources after write %d", got.Serial, len(got.Resources), i)
		}
	}
	// Writing without reading first works when serial and lineage match.
	g := NewFile(path)
	mustWrite(t, g, s)
	if s.Serial != 6 {
		t.Fatalf("serial %d, want 6", s.Serial)
	}
}

func TestModes(t *testing.T) {
	path := statePath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s := New()
	s.Serial = 3
	data, _ := json.Marshal(s)
	// A state left world-readable (e.g. by hand) becomes 0600 when written.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFile(path)
	unlock, err := f.Lock(context.Background(), LockInfo{PID: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	mustWrite(t, f, mustRead(t, f))
	checkMode(t, path, 0o600)
	checkMode(t, f.BackupPath(), 0o600)
	checkMode(t, f.LockPath(), 0o600)
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"state.json", "state.json.backup", "state.json.lock"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %v, want %v", names, want)
	}
}

func TestBackup(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	s := mustRead(t, f)
	mustWrite(t, f, s) // serial 1; nothing to back up
	if _, err := os.Stat(f.BackupPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup made of no state: %v", err)
	}
	s.Resources["a"] = sampleResource(1)
	mustWrite(t, f, s) // serial 2; the same File makes no backup
	if _, err := os.Stat(f.BackupPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup made on a later write: %v", err)
	}
	before, _ := os.ReadFile(path)

	// A new File (the next run) backs up the state before its first write
	// only.
	g := NewFile(path)
	s = mustRead(t, g)
	s.Resources["b"] = sampleResource(2)
	mustWrite(t, g, s)
	backup, err := os.ReadFile(g.BackupPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(backup, before) {
		t.Errorf("backup\n%s\nwant\n%s", backup, before)
	}
	s.Resources["c"] = sampleResource(3)
	mustWrite(t, g, s)
	if backup2, _ := os.ReadFile(g.BackupPath()); !bytes.Equal(backup2, before) {
		t.Errorf("backup changed by a second write")
	}
	b := mustRead(t, NewFile(g.BackupPath()))
	if b.Serial != 2 || len(b.Resources) != 1 {
		t.Errorf("backup holds serial %d with %d resources", b.Serial, len(b.Resources))
	}
}

func TestStaleWriterRefused(t *testing.T) {
	path := statePath(t)
	mustWrite(t, NewFile(path), New())

	f1, f2 := NewFile(path), NewFile(path)
	s1, s2 := mustRead(t, f1), mustRead(t, f2)
	s1.Resources["a"] = sampleResource(1)
	mustWrite(t, f1, s1)
	before, _ := os.ReadFile(path)

	s2.Resources["b"] = sampleResource(2)
	err := f2.Write(context.Background(), s2)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("stale write: %v, want ErrStale", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if s2.Serial != 1 {
		t.Errorf("a refused write changed the serial to %d", s2.Serial)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("a refused write changed the file")
	}

	// A copy of s2 with the current serial is still refused by f2: it has
	// not read what f1 wrote.
	s3 := s2.Clone()
	s3.Serial = s1.Serial
	if err := f2.Write(context.Background(), s3); !errors.Is(err, ErrStale) {
		t.Fatalf("write by a File that has not seen the latest write: %v, want ErrStale", err)
	}
	// After reading again, f2 may write.
	s2 = mustRead(t, f2)
	s2.Resources["b"] = sampleResource(2)
	mustWrite(t, f2, s2)
	// And now f1 is behind.
	if err := f1.Write(context.Background(), s1); !errors.Is(err, ErrStale) {
		t.Fatalf("write by f1 after f2's: %v, want ErrStale", err)
	}
	// An old copy written by the same File is refused too.
	old := s2.Clone()
	mustWrite(t, f2, s2)
	if err := f2.Write(context.Background(), old); !errors.Is(err, ErrStale) {
		t.Fatalf("write of an older copy: %v, want ErrStale", err)
	}
}

func TestOutsideChangeDetected(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	s := mustRead(t, f)
	mustWrite(t, f, s)
	// Another writer rewrites the file in place with the same size.
	data, _ := os.ReadFile(path)
	other := bytes.Replace(data, []byte(`"serial":1`), []byte(`"serial":7`), 1)
	if bytes.Equal(other, data) {
		t.Fatalf("test setup: no serial in %s", data)
	}
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(context.Background(), s); !errors.Is(err, ErrStale) {
		t.Fatalf("write after an outside change: %v, want ErrStale", err)
	}
	// Removing the state under a writer is an outside change too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(context.Background(), s); !errors.Is(err, ErrStale) {
		t.Fatalf("write after the state was removed: %v, want ErrStale", err)
	}
	// Garbage written by another writer is refused and not overwritten.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(context.Background(), s); err == nil {
		t.Fatal("write over garbage succeeded")
	}
	if data, _ := os.ReadFile(path); string(data) != "garbage" {
		t.Fatalf("garbage overwritten: %s", data)
	}
}

func TestLineageMismatchRefused(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	mustWrite(t, f, mustRead(t, f))
	before, _ := os.ReadFile(path)
	for name, w := range map[string]*File{"same File": f, "new File": NewFile(path)} {
		other := New() // another lineage, serial 0
		other.Serial = 1
		err := w.Write(context.Background(), other)
		if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "lineage") {
			t.Errorf("%s: write of another lineage: %v, want ErrStale naming the lineage", name, err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("a refused write changed the file")
	}
}

func TestInvalidStateRefused(t *testing.T) {
	good := New()
	good.Serial = 4
	good.Resources["a"] = sampleResource(1)
	goodJSON, _ := json.Marshal(good)
	withVersion := func(v string) string {
		return strings.Replace(string(goodJSON), `"version":1`, `"version":`+v, 1)
	}

	tests := []struct {
		name    string
		content string
		want    string // in the error message
	}{
		{"empty", "", "is empty"},
		{"whitespace", " \n\t\n", "is empty"},
		{"truncated", string(goodJSON[:len(goodJSON)/2]), "is truncated"},
		{"truncated after the object", string(goodJSON[:len(goodJSON)-1]) + "\n", "is truncated"},
		{"not JSON", "hello, world\n", "is not valid JSON"},
		{"binary", "\x00\x00\x00\x00", "is not valid JSON"},
		{"trailing garbage", string(goodJSON) + "}", "is not valid JSON"},
		{"array", "[1,2,3]", "not an object"},
		{"newer version", withVersion("2"), "written by a newer landscaper"},
		{"version zero", withVersion("0"), "unsupported format version 0"},
		{"version string", withVersion(`"1"`), "invalid format version"},
		{"no version", `{"lineage":"x","serial":1,"resources":{}}`, "no format version"},
		{"no lineage", `{"version":1,"serial":1,"resources":{}}`, "no lineage"},
		{"empty lineage", `{"version":1,"lineage":"","serial":1}`, "no lineage"},
		{"negative serial", `{"version":1,"lineage":"x","serial":-1}`, `invalid value at "serial"`},
		{"resources not an object", `{"version":1,"lineage":"x","serial":1,"resources":[]}`, `invalid value at "resources"`},
		{"null resource", `{"version":1,"lineage":"x","serial":1,"resources":{"a":null}}`, `resource "a" recorded as null`},
		{"resource without type", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"provider":"p"}}}`, `resource "a" without a type`},
		{"bad pending operation", `{"version":1,"lineage":"x","serial":1,"resources":{},"pending":{"a":{"operation":"explode","type":"t"}}}`, `unknown operation "explode"`},
		{"bad inputs", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","inputs":"x","private":"%%%"}}}`, `invalid`},
		// Corrupted: random bytes, a block of zeros (a lost disk block).
		{"random bytes", string(randomBytes(512, 1)), "is not valid JSON"},
		{"zeroed block", string(goodJSON[:20]) + strings.Repeat("\x00", 64) + string(goodJSON[84:]), "is not valid JSON"},
		{"invalid JSON inside", strings.Replace(string(goodJSON), `"resources":{`, `"resources":{,`, 1), "is not valid JSON"},
		// Hand-edited: values of the wrong type, named by resource and field.
		{"serial a string", `{"version":1,"lineage":"x","serial":"4"}`, `invalid value at "serial": a JSON string`},
		{"serial a fraction", `{"version":1,"lineage":"x","serial":1.5}`, `invalid value at "serial": a JSON number 1.5`},
		{"serial too big", `{"version":1,"lineage":"x","serial":18446744073709551616}`, `invalid value at "serial"`},
		{"lineage a number", `{"version":1,"lineage":42,"serial":1}`, `invalid value at "lineage": a JSON number`},
		{"lineage null", `{"version":1,"lineage":null,"serial":1}`, "no lineage"},
		{"resource a string", `{"version":1,"lineage":"x","serial":1,"resources":{"a":"local.file"}}`, `invalid resource "a": it holds a JSON string, not an object`},
		{"type a number", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":5}}}`, `invalid value at "type" in resource "a": a JSON number`},
		{"tainted a string", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","tainted":"yes"}}}`, `invalid value at "tainted" in resource "a": a JSON string`},
		{"dependencies a string", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","dependencies":"b"}}}`, `invalid value at "dependencies" in resource "a"`},
		{"private not base64", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","private":"%%%"}}}`, `invalid value at "private" in resource "a": illegal base64`},
		{"sensitive path unparsable", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","sensitiveInputs":["\"open"]}}}`, `invalid value at "sensitiveInputs" in resource "a"`},
		{"since not a time", `{"version":1,"lineage":"x","serial":1,"pending":{"a":{"operation":"create","type":"t","since":"yesterday"}}}`, `invalid value at "since" in pending operation "a"`},
		// Hand-edited: fields the format does not have, or has once.
		{"unknown field", `{"version":1,"lineage":"x","serial":1,"colour":"red"}`, `unknown field "colour" (hand-edited?`},
		{"unknown resource field", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","taint":true}}}`, `unknown field "taint" in resource "a"`},
		{"unknown pending field", `{"version":1,"lineage":"x","serial":1,"pending":{"a":{"operation":"create","type":"t","why":"x"}}}`, `unknown field "why" in pending operation "a"`},
		{"field twice", `{"version":1,"lineage":"x","serial":1,"serial":2}`, `the field "serial" is given twice`},
		{"resource field twice", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t","type":"u"}}}`, `invalid resource "a": the field "type" is given twice`},
		{"resource twice", `{"version":1,"lineage":"x","serial":1,"resources":{"a":{"type":"t"},"a":{"type":"u"}}}`, `the field "a" is given twice`},
		{"misspelt field", `{"version":1,"lineAge":"x","serial":1}`, `"lineAge", which should be spelled "lineage"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, withBackup := range []bool{false, true} {
				path := statePath(t)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if withBackup {
					if err := os.WriteFile(path+".backup", goodJSON, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				f := NewFile(path)
				_, err := f.Read(context.Background())
				var inv *InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("Read: %v, want *InvalidError", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, path) || !strings.Contains(msg, tt.want) {
					t.Errorf("Read error %q does not name %s and say %q", msg, path, tt.want)
				}
				if mentions := strings.Contains(msg, path+".backup"); mentions != withBackup {
					t.Errorf("backup exists: %v, but error mentions it: %v: %s", withBackup, mentions, msg)
				}
				// The File refuses to write, with any state.
				for _, s := range []*State{New(), good.Clone()} {
					if err := f.Write(context.Background(), s); err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Errorf("Write after a failed Read: %v", err)
					}
				}
				// So does a File that did not read first.
				g := NewFile(path)
				if err := g.Write(context.Background(), good.Clone()); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Write without Read: %v", err)
				}
				if data, _ := os.ReadFile(path); string(data) != tt.content {
					t.Errorf("the invalid file was changed to %q", data)
				}
				if withBackup {
					if data, _ := os.ReadFile(path + ".backup"); !bytes.Equal(data, goodJSON) {
						t.Errorf("the backup was changed")
					}
				}
			}
		})
	}
}

func TestFixedStateWritableAgain(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	mustWrite(t, f, New())
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(context.Background()); err == nil {
		t.Fatal("Read of a broken file succeeded")
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustRead(t, f)
	mustWrite(t, f, s)
}

func TestDirectoryAsState(t *testing.T) {
	path := statePath(t)
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	f := NewFile(path)
	if _, err := f.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Read of a directory: %v", err)
	}
	if err := f.Write(context.Background(), New()); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
}

func TestContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := NewFile(statePath(t))
	if _, err := f.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read: %v", err)
	}
	if err := f.Write(ctx, New()); !errors.Is(err, context.Canceled) {
		t.Errorf("Write: %v", err)
	}
	if _, err := f.Lock(ctx, LockInfo{}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock: %v", err)
	}
}

func testLockInfo(cmd string) LockInfo {
	return LockInfo{PID: 4242, Host: "builder.example", Command: cmd, Since: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestLockHeld(t *testing.T) {
	path := statePath(t)
	// The directory exists already, as after a first write: the lock file
	// stays there (see TestLockRemovesWhatItMade for one Lock made).
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	a, b := NewFile(path), NewFile(path)
	unlock, err := a.Lock(context.Background(), testLockInfo("landscaper apply"), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, a.LockPath(), 0o600)

	start := time.Now()
	_, err = b.Lock(context.Background(), testLockInfo("other"), 0)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Lock: %v, want *LockedError", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Lock with timeout 0 took %v", time.Since(start))
	}
	if le.Where != path || le.Holder != testLockInfo("landscaper apply") {
		t.Errorf("LockedError = %+v", le)
	}
	for _, want := range []string{path, "4242", "builder.example", "landscaper apply"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The same File is not re-entrant either.
	if _, err := a.Lock(context.Background(), testLockInfo("again"), 0); !errors.As(err, &le) {
		t.Errorf("re-locking: %v, want *LockedError", err)
	}

	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	if _, err := os.Stat(a.LockPath()); err != nil {
		t.Errorf("lock file removed: %v", err)
	}
	unlock, err = b.Lock(context.Background(), testLockInfo("other"), 0)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	var info LockInfo
	data, _ := os.ReadFile(b.LockPath())
	if err := json.Unmarshal(data, &info); err != nil || info != testLockInfo("other") {
		t.Errorf("lock file holds %q (%v)", data, err)
	}
	unlock()
}

func TestLockTimeout(t *testing.T) {
	path := statePath(t)
	unlock, err := NewFile(path).Lock(context.Background(), testLockInfo("first"), 0)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("expires", func(t *testing.T) {
		start := time.Now()
		_, err := NewFile(path).Lock(context.Background(), testLockInfo("second"), 300*time.Millisecond)
		var le *LockedError
		if !errors.As(err, &le) || le.Holder.Command != "first" {
			t.Fatalf("Lock: %v, want *LockedError naming the holder", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
			t.Errorf("gave up after %v, want about 300ms", d)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := NewFile(path).Lock(ctx, testLockInfo("second"), time.Minute)
		var le *LockedError
		if !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock: %v, want *LockedError and DeadlineExceeded", err)
		}
	})
	t.Run("released while waiting", func(t *testing.T) {
		time.AfterFunc(250*time.Millisecond, func() { unlock() })
		start := time.Now()
		unlock2, err := NewFile(path).Lock(context.Background(), testLockInfo("second"), 10*time.Second)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		defer unlock2()
		if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
			t.Errorf("got the lock after %v, want soon after 250ms", d)
		}
	})
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	path := statePath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	f := NewFile(path)
	_, err = f.Lock(context.Background(), testLockInfo("me"), 0)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Lock while the helper holds it: %v, want *LockedError", err)
	}
	if le.Holder.PID != cmd.Process.Pid || le.Holder.Command != "lock-holder-helper" {
		t.Errorf("holder %+v, want the helper (pid %d)", le.Holder, cmd.Process.Pid)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no clean-up runs
		t.Fatal(err)
	}
	cmd.Wait()
	unlock, err := f.Lock(context.Background(), testLockInfo("me"), 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	unlock()
}

// TestLockNotInherited checks that a child process does not keep the lock.
func TestLockNotInherited(t *testing.T) {
	path := statePath(t)
	f := NewFile(path)
	unlock, err := f.Lock(context.Background(), testLockInfo("parent"), 0)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatalf("cannot start sleep: %v", err)
	}
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock, err = NewFile(path).Lock(context.Background(), testLockInfo("next"), 0)
	if err != nil {
		t.Fatalf("Lock while a child of the former holder runs: %v", err)
	}
	unlock()
}

func TestFieldNamesDifferingOnlyByCaseAreRefused(t *testing.T) {
	for _, doc := range []string{
		`{"version":1,"lineAge":"x","resources":{}}`,
		`{"version":1,"lineage":"x","Resources":{}}`,
		`{"version":1,"lineage":"x","resources":{"a":{"type":"local.file","provider":"local","Inputs":{},"outputs":{}}}}`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := NewFile(path).Read(context.Background())
		if err == nil || !strings.Contains(err.Error(), "should be spelled") {
			t.Errorf("%s: got %v, want a refusal naming the misspelt field", doc, err)
		}
	}
}

// TestRecordsWithoutSchemaVersion checks that a state recorded before
// schema versions existed still reads, its records at version 0, and that
// a version is read as recorded.
func TestRecordsWithoutSchemaVersion(t *testing.T) {
	tests := []struct {
		name        string
		resource    string
		pending     string
		wantVersion int64
	}{
		{"recorded before versions", `{"type":"kv.entry","provider":"kv","inputs":{},"outputs":{}}`, `{"operation":"create","type":"kv.entry","provider":"kv","inputs":{},"since":"2024-05-01T12:00:00Z"}`, 0},
		{"recorded at version 2", `{"type":"kv.entry","provider":"kv","inputs":{},"outputs":{},"schemaVersion":2}`, `{"operation":"create","type":"kv.entry","provider":"kv","inputs":{},"since":"2024-05-01T12:00:00Z","schemaVersion":2}`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"version":1,"lineage":"6f1c0a3e-9d1b-4c7e-8a5f-6d2b1c9e7a43","serial":4,"resources":{"a":` + tt.resource + `},"pending":{"b":` + tt.pending + `}}`
			s, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := s.Resources["a"].SchemaVersion; got != tt.wantVersion {
				t.Errorf("resource at schema version %d, want %d", got, tt.wantVersion)
			}
			if got := s.Pending["b"].SchemaVersion; got != tt.wantVersion {
				t.Errorf("pending create at schema version %d, want %d", got, tt.wantVersion)
			}
		})
	}
}
