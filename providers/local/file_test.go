package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

func TestFileLifecycle(t *testing.T) {
	// Parent directories get 0755 less the umask, like mkdir -p.
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	h := newHarness(t)
	name := filepath.Join(t.TempDir(), "a", "b", "greeting.txt")
	in := map[string]any{"name": name, "contents": "hello\n"}

	s, _ := h.Create("local.file", in)
	if got := readFile(t, name); got != "hello\n" {
		t.Fatalf("contents = %q, want %q", got, "hello\n")
	}
	if got := sdktest.Outputs(t, s)["sha256"]; got != sha("hello\n") {
		t.Fatalf("sha256 = %v, want %s", got, sha("hello\n"))
	}
	for _, dir := range []string{filepath.Dir(name), filepath.Dir(filepath.Dir(name))} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("directory %s has mode %o, want 755", dir, fi.Mode().Perm())
		}
	}
	entries, err := os.ReadDir(filepath.Dir(name))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temporary files left)", len(entries))
	}

	r := h.Read("local.file", s)
	if !r.Exists || !strings.Contains(string(r.Outputs.JSON), sha("hello\n")) {
		t.Fatalf("Read = exists %v, outputs %s; want the file with its hash", r.Exists, r.Outputs.JSON)
	}
	if p := h.Plan("local.file", s, in); p.Action != resource.ActionNoop {
		t.Fatalf("plan of unchanged file = %v, want no-op", p.Action)
	}

	in2 := map[string]any{"name": name, "contents": "bye\n", "mode": "0600"}
	p := h.Plan("local.file", s, in2)
	if p.Action != resource.ActionUpdate {
		t.Fatalf("plan of changed contents = %v, want update", p.Action)
	}
	changed := pathStrings(p.Changed)
	if !contains(changed, "contents") || !contains(changed, "mode") {
		t.Errorf("changed = %v, want contents and mode", changed)
	}
	s2, _ := h.Update("local.file", s, in2)
	if got := readFile(t, name); got != "bye\n" {
		t.Fatalf("contents after update = %q", got)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after update = %o, want 600", fi.Mode().Perm())
	}
	if got := sdktest.Outputs(t, s2)["sha256"]; got != sha("bye\n") {
		t.Errorf("sha256 after update = %v", got)
	}

	h.Delete("local.file", s2)
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("file still there after delete: %v", err)
	}
	h.Delete("local.file", s2) // gone already: still a success
	if r := h.Read("local.file", s2); r.Exists {
		t.Fatalf("Read after delete says the file exists")
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		name string
		mode any // nil: not given
		want os.FileMode
	}{
		{"default", nil, 0o644},
		{"four digits", "0600", 0o600},
		{"three digits", "755", 0o755},
		{"setuid", "4750", 0o750 | os.ModeSetuid},
	}
	// The umask must not change the modes.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			name := filepath.Join(t.TempDir(), "f")
			in := map[string]any{"name": name, "contents": "x"}
			if tt.mode != nil {
				in["mode"] = tt.mode
			}
			h.Create("local.file", in)
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky); got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFileRelativeName: a relative name is relative to the provider's
// working directory (the engine runs providers in the deployment's
// directory), and the record keeps the absolute path: a later run from
// another directory reads and deletes that file, and plans to replace it
// if name now means another file.
func TestFileRelativeName(t *testing.T) {
	deployment, elsewhere := t.TempDir(), t.TempDir()
	want := filepath.Join(deployment, "out", "rel.txt")
	in := map[string]any{"name": "out/rel.txt", "contents": "r"}
	t.Chdir(deployment)
	h := newHarness(t)
	if p := h.Plan("local.file", nil, in); plannedOutputs(t, p)["path"] != want || contains(p.UnknownOutputs, "path") {
		t.Errorf("planned outputs %s (unknown %v), want path %s", p.PlannedOutputs, p.UnknownOutputs, want)
	}
	s, _ := h.Create("local.file", in)
	if got := readFile(t, want); got != "r" {
		t.Fatalf("contents = %q", got)
	}
	if got := sdktest.Outputs(t, s)["path"]; got != want {
		t.Fatalf("outputs.path = %v, want %s", got, want)
	}
	if p := h.Plan("local.file", s, in); p.Action != resource.ActionNoop {
		t.Errorf("plan in the same directory = %v, want no-op", p.Action)
	}

	// A later run starts its provider in its own directory.
	t.Chdir(elsewhere)
	h = newHarness(t)
	if r := h.Read("local.file", s); !r.Exists || !strings.Contains(string(r.Outputs.JSON), want) {
		t.Fatalf("Read from another directory = exists %v, outputs %s; want the recorded file", r.Exists, r.Outputs.JSON)
	}
	p := h.Plan("local.file", s, in)
	if p.Action != resource.ActionReplace || !contains(pathStrings(p.RequiresReplace), "name") {
		t.Errorf("plan where name means another file = %v (replace %v), want a replacement forced by name", p.Action, pathStrings(p.RequiresReplace))
	}
	if len(p.Diagnostics) == 0 || !strings.Contains(p.Diagnostics[0].Summary, want) {
		t.Errorf("plan diagnostics %v, want a warning naming %s", p.Diagnostics, want)
	}
	h.Delete("local.file", s)
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("delete from another directory left %s: %v", want, err)
	}
}

// TestFileRecordWithoutPath: a record made before outputs.path existed
// means name relative to the provider's directory, and refreshing it
// reports no change.
func TestFileRecordWithoutPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(dir, "old.txt"), []byte("o"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := &resource.State{
		Inputs:  resource.Values{JSON: h.JSON(map[string]any{"name": "old.txt", "contents": "o", "mode": "0644"})},
		Outputs: resource.Values{JSON: h.JSON(map[string]any{"sha256": sha("o")})},
	}
	r := h.Read("local.file", old)
	if !r.Exists || string(r.Outputs.JSON) != string(old.Outputs.JSON) {
		t.Errorf("Read = exists %v, outputs %s; want %s", r.Exists, r.Outputs.JSON, old.Outputs.JSON)
	}
	if p := h.Plan("local.file", old, map[string]any{"name": "old.txt", "contents": "o"}); p.Action != resource.ActionNoop {
		t.Errorf("plan = %v, want no-op", p.Action)
	}
	h.Delete("local.file", old)
	if _, err := os.Stat(filepath.Join(dir, "old.txt")); !os.IsNotExist(err) {
		t.Errorf("delete left old.txt: %v", err)
	}
}

func TestFileDrift(t *testing.T) {
	h := newHarness(t)
	name := filepath.Join(t.TempDir(), "drift.txt")
	in := map[string]any{"name": name, "contents": "mine\n"}
	s, _ := h.Create("local.file", in)

	if err := os.WriteFile(name, []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.Read("local.file", s)
	if !r.Exists {
		t.Fatal("Read: file gone")
	}
	refreshed := &resource.State{Inputs: s.Inputs, Outputs: r.Outputs, Private: r.Private}
	if got := sdktest.Outputs(t, refreshed)["sha256"]; got != sha("theirs\n") {
		t.Fatalf("Read sha256 = %v, want the hash of the changed contents", got)
	}
	p := h.Plan("local.file", refreshed, in)
	if p.Action != resource.ActionUpdate || !contains(pathStrings(p.Changed), "contents") {
		t.Fatalf("plan after drift = %v changing %v; want update of contents", p.Action, pathStrings(p.Changed))
	}
	if got := plannedOutputs(t, p)["sha256"]; got != sha("mine\n") {
		t.Errorf("planned sha256 = %v, want the desired hash", got)
	}
	h.Update("local.file", refreshed, in)
	if got := readFile(t, name); got != "mine\n" {
		t.Fatalf("contents after update = %q", got)
	}

	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if r := h.Read("local.file", s); r.Exists {
		t.Fatal("Read of a removed file says it exists")
	}
}

// TestFileRead: what a refresh finds at the recorded path, and that it
// removes a leftover of an interrupted write.
func TestFileRead(t *testing.T) {
	tests := []struct {
		name   string
		make   func(t *testing.T, path string)
		exists bool
		sha    string
		err    string
	}{
		{"as written", func(*testing.T, string) {}, true, sha("mine\n"), ""},
		{"changed", func(t *testing.T, path string) { writeTestFile(t, path, "theirs\n") }, true, sha("theirs\n"), ""},
		{"empty", func(t *testing.T, path string) { writeTestFile(t, path, "") }, true, sha(""), ""},
		{"larger than one read", func(t *testing.T, path string) { writeTestFile(t, path, strings.Repeat("x", 100_000)) }, true, sha(strings.Repeat("x", 100_000)), ""},
		{"removed", func(t *testing.T, path string) { mustRemove(t, path) }, false, "", ""},
		{"a directory now", func(t *testing.T, path string) {
			mustRemove(t, path)
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false, "", "is a directory"},
		{"a leftover beside it", func(t *testing.T, path string) {
			writeTestFile(t, filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".landscaper-tmp"), "half")
		}, true, sha("mine\n"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "f.txt")
			s, _ := h.Create("local.file", map[string]any{"name": path, "contents": "mine\n"})
			tc.make(t, path)
			r := h.Read("local.file", s)
			if tc.err != "" {
				if derr := r.Diagnostics.Err(); derr == nil || !strings.Contains(derr.Error(), tc.err) || !strings.Contains(derr.Error(), path) {
					t.Fatalf("Read: %v, want an error naming %s and saying %q", derr, path, tc.err)
				}
				return
			}
			if r.Diagnostics.HasError() {
				t.Fatalf("Read: %v", r.Diagnostics.Err())
			}
			if r.Exists != tc.exists {
				t.Fatalf("Read: exists %v, want %v", r.Exists, tc.exists)
			}
			if tc.exists {
				if got := sdktest.Outputs(t, &resource.State{Outputs: r.Outputs})["sha256"]; got != tc.sha {
					t.Errorf("sha256 %v, want %v", got, tc.sha)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".landscaper-tmp") {
					t.Errorf("the leftover %s is still there after a refresh", e.Name())
				}
			}
		})
	}
}

func writeTestFile(t *testing.T, path, contents string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func TestFilePlan(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t)
	name := filepath.Join(dir, "p.txt")
	in := map[string]any{"name": name, "contents": "one"}
	prior, _ := h.Create("local.file", in)
	interrupted := &resource.State{Inputs: prior.Inputs}

	tests := []struct {
		name        string
		prior       *resource.State
		desired     map[string]any
		unknown     []resource.Path
		action      resource.Action
		replace     []string
		plannedHash string // "" means sha256 is unknown until apply
	}{
		{"create", nil, in, nil, resource.ActionCreate, nil, sha("one")},
		{"create with unknown contents", nil, map[string]any{"name": name}, []resource.Path{resource.AttrPath("contents")}, resource.ActionCreate, nil, ""},
		{"no-op", prior, in, nil, resource.ActionNoop, nil, sha("one")},
		{"update", prior, map[string]any{"name": name, "contents": "two"}, nil, resource.ActionUpdate, nil, sha("two")},
		{"update with unknown contents", prior, map[string]any{"name": name}, []resource.Path{resource.AttrPath("contents")}, resource.ActionUpdate, nil, ""},
		{"replace on rename", prior, map[string]any{"name": filepath.Join(dir, "q.txt"), "contents": "one"}, nil, resource.ActionReplace, []string{"name"}, sha("one")},
		{"interrupted create", interrupted, in, nil, resource.ActionCreate, nil, sha("one")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.Plan("local.file", tt.prior, tt.desired, tt.unknown...)
			if p.Diagnostics.HasError() {
				t.Fatalf("plan: %v", p.Diagnostics.Err())
			}
			if p.Action != tt.action {
				t.Errorf("action = %v, want %v", p.Action, tt.action)
			}
			if got := pathStrings(p.RequiresReplace); strings.Join(got, ",") != strings.Join(tt.replace, ",") {
				t.Errorf("requires replace = %v, want %v", got, tt.replace)
			}
			planned := plannedOutputs(t, p)
			if tt.plannedHash == "" {
				if _, ok := planned["sha256"]; ok || !contains(p.UnknownOutputs, "sha256") {
					t.Errorf("planned = %v, unknown = %v; want sha256 unknown", planned, p.UnknownOutputs)
				}
				return
			}
			if planned["sha256"] != tt.plannedHash || contains(p.UnknownOutputs, "sha256") {
				t.Errorf("planned = %v, unknown = %v; want sha256 = %s", planned, p.UnknownOutputs, tt.plannedHash)
			}
		})
	}
}

func TestFileValidate(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		inputs  map[string]any
		unknown []resource.Path
		path    string // "" means no error
		want    string
	}{
		{"valid", map[string]any{"name": "f", "contents": "x"}, nil, "", ""},
		{"valid mode", map[string]any{"name": "f", "contents": "x", "mode": "0600"}, nil, "", ""},
		{"unknown input", map[string]any{"name": "f", "contents": "x", "owner": "root"}, nil, "owner", "unknown input"},
		{"missing name", map[string]any{"contents": "x"}, nil, "name", "missing required input"},
		{"missing contents", map[string]any{"name": "f"}, nil, "contents", "missing required input"},
		{"wrong type", map[string]any{"name": "f", "contents": 42}, nil, "contents", "wrong type"},
		{"empty name", map[string]any{"name": "", "contents": "x"}, nil, "name", "empty file name"},
		{"mode not octal", map[string]any{"name": "f", "contents": "x", "mode": "0988"}, nil, "mode", "invalid file mode"},
		{"mode symbolic", map[string]any{"name": "f", "contents": "x", "mode": "rw-r--r--"}, nil, "mode", "invalid file mode"},
		{"mode too short", map[string]any{"name": "f", "contents": "x", "mode": "44"}, nil, "mode", "invalid file mode"},
		{"mode empty", map[string]any{"name": "f", "contents": "x", "mode": ""}, nil, "mode", "invalid file mode"},
		{"mode a number", map[string]any{"name": "f", "contents": "x", "mode": 644}, nil, "mode", "wrong type"},
		{"unknown mode is not judged", map[string]any{"name": "f", "contents": "x"}, []resource.Path{resource.AttrPath("mode")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := validate(t, h, "local.file", tt.inputs, tt.unknown...)
			if tt.path == "" {
				if diags.HasError() {
					t.Fatalf("unexpected diagnostics: %v", diags.Err())
				}
				return
			}
			if !hasErrorAt(diags, tt.path, tt.want) {
				t.Fatalf("diagnostics %v; want an error at %q containing %q", diags, tt.path, tt.want)
			}
		})
	}
}

func TestFileNeverLogsContents(t *testing.T) {
	h := newHarness(t)
	name := filepath.Join(t.TempDir(), "secret")
	secret := "hunter2-very-secret"
	in := map[string]any{"name": name, "contents": secret, "mode": "0600"}
	s, ev := h.Create("local.file", in)
	s2, ev2 := h.Update("local.file", s, map[string]any{"name": name, "contents": secret + "!", "mode": "0600"})
	ev3 := h.Delete("local.file", s2)
	for _, e := range []*sdktest.Events{ev, ev2, ev3} {
		for _, l := range append(e.Logs, e.ProgressMessages...) {
			if strings.Contains(l, "hunter2") {
				t.Fatalf("log line shows the contents: %q", l)
			}
		}
	}
}

func TestFileCreateError(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A parent that is a file cannot become a directory.
	r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: "local.file", Name: "test",
		Inputs: resource.Values{JSON: h.JSON(map[string]any{"name": filepath.Join(blocker, "f"), "contents": "x"})}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), blocker) {
		t.Fatalf("diagnostics %v; want an error naming the file", r.Diagnostics)
	}
}
