package pxenbp_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

func TestSchema(t *testing.T) {
	h := newHarness(t)
	if h.Schema.Name != "pxe-nbp" || h.Schema.Version != "0.1.0" {
		t.Fatalf("schema %s %s, want pxe-nbp 0.1.0", h.Schema.Name, h.Schema.Version)
	}
	ts := h.Schema.Types["entry"]
	if ts == nil || len(h.Schema.Types) != 1 {
		t.Fatalf("types = %v, want entry alone", h.Schema.Types)
	}
	tests := []struct {
		name, typ, def        string
		required, forceNew, s bool
	}{
		{"mac", "string", "", true, true, false},
		{"kernel", "string", "", true, false, false},
		{"initrd", "list(string)", "[]", false, false, false},
		{"cmdline", "string", `""`, false, false, false},
		{"files", "map(object)", "{}", false, false, true},
		{"bootDir", "string", `"` + bootentry.DefaultDir + `"`, false, true, false},
	}
	for _, tt := range tests {
		a, ok := ts.Input(tt.name)
		if !ok {
			t.Errorf("no input %s", tt.name)
			continue
		}
		if a.Type != tt.typ || string(a.Default) != tt.def || a.Required != tt.required || a.ForceNew != tt.forceNew || a.Sensitive != tt.s {
			t.Errorf("input %s = %+v; want type %s, default %s, required %v, forcing replacement %v, sensitive %v", tt.name, a, tt.typ, tt.def, tt.required, tt.forceNew, tt.s)
		}
	}
	for _, name := range []string{"mac", "scriptPath", "version", "fetchRecord"} {
		if _, ok := ts.Output(name); !ok {
			t.Errorf("no output %s", name)
		}
	}
}

func TestMACNotations(t *testing.T) {
	b := makeBootFiles(t)
	for _, notation := range []string{
		"52:54:00:12:34:56",
		"52-54-00-12-34-56",
		"5254.0012.3456",
		"525400123456",
		"01-52-54-00-12-34-56",
	} {
		for _, n := range []string{notation, strings.ToUpper(notation)} {
			t.Run(n, func(t *testing.T) {
				h := newHarness(t)
				dir := t.TempDir()
				s, _ := h.Create(typ, with(b.inputs(dir), "mac", n))
				out := sdktest.Outputs(t, s)
				if out["mac"] != mac || out["scriptPath"] != "machine/"+macHyphen+".ipxe" {
					t.Errorf("outputs = %v; want mac %s and scriptPath machine/%s.ipxe", out, mac, macHyphen)
				}
				if v := getEntry(t, dir); v.MAC != mac || out["version"] != v.ID {
					t.Errorf("entry %s version %s; outputs %v", v.MAC, v.ID, out)
				}
				if _, err := os.Lstat(filepath.Join(dir, "entries", macHyphen)); err != nil {
					t.Errorf("entry link: %v", err)
				}
			})
		}
	}
}

func TestCreate(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir),
		"initrd", []any{b.Initrds[0], b.Initrds[1]},
		"files", map[string]any{
			"/etc/ssh/ssh_host_ed25519_key": file("PRIVATE KEY\n", "0400"),
			"/etc/ssh/authorized_keys":      file("ssh-ed25519 AAAA op\n", ""),
			"/root/.ssh/authorized_keys":    file("ssh-ed25519 BBBB root\n", "600"),
			"/etc/machine-id":               file("0123456789abcdef0123456789abcdef\n", "0444"),
		})
	plan := h.Plan(typ, nil, in)
	if plan.Diagnostics.HasError() || plan.Action != resource.ActionCreate {
		t.Fatalf("plan = %v, %v", plan.Action, plan.Diagnostics.Err())
	}
	planned := plannedOutputs(t, plan)
	if !slices.Equal(plan.UnknownOutputs, []string{"owner"}) {
		t.Errorf("unknown outputs %v; all but owner (a token made at create) are known at plan time", plan.UnknownOutputs)
	}

	s, ev := h.Create(typ, in)
	out := sdktest.Outputs(t, s)
	for _, k := range []string{"mac", "scriptPath", "version", "fetchRecord"} {
		if out[k] != planned[k] {
			t.Errorf("output %s = %v, planned %v", k, out[k], planned[k])
		}
	}
	v := getEntry(t, dir)
	if v.Kernel != b.Kernel || !slices.Equal(v.Initrds, b.Initrds) || v.Cmdline != "init=/nix/store/x-nixos-system/init console=ttyS0" || !v.HasExtra {
		t.Fatalf("entry = %+v", v.Entry)
	}
	if out["version"] != v.ID {
		t.Errorf("version output %v, entry version %s", out["version"], v.ID)
	}
	// The fetch record, where the boot server writes who fetched the
	// version, is there, empty, and writable by the group.
	if out["fetchRecord"] != filepath.Join(dir, "versions", macHyphen, v.ID, "fetch") || out["fetchRecord"] != v.FetchDir() {
		t.Errorf("fetchRecord output %v, want %s", out["fetchRecord"], v.FetchDir())
	}
	if fi, err := os.Stat(v.FetchDir()); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o770 {
		t.Errorf("fetch record directory: %v, %v; want a directory of mode 0770", fi, err)
	}
	if r, err := bootentry.ReadFetchRecord(v.FetchDir()); err != nil || r.Claim != nil || len(r.Events) != 0 || r.Sealed {
		t.Errorf("a new version's fetch record = %+v, %v; want it empty", r, err)
	}
	if fi, err := os.Stat(v.ExtraPath()); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("extra initrd: %v, %v; want mode 0640", fi, err)
	}
	files, dirs := unpackExtra(t, v.ExtraPath())
	want := map[string]unpacked{
		"/etc/ssh/ssh_host_ed25519_key": {"PRIVATE KEY\n", 0o400},
		"/etc/ssh/authorized_keys":      {"ssh-ed25519 AAAA op\n", 0o444},
		"/root/.ssh/authorized_keys":    {"ssh-ed25519 BBBB root\n", 0o600},
		"/etc/machine-id":               {"0123456789abcdef0123456789abcdef\n", 0o444},
	}
	if len(files) != len(want) {
		t.Errorf("extra initrd holds %d files, want %d", len(files), len(want))
	}
	for name, w := range want {
		if got, ok := files[name]; !ok || got != w {
			t.Errorf("extra initrd %s = %+v (present %v), want %+v", name, got, ok, w)
		}
	}
	for _, d := range []string{"/etc", "/etc/ssh", "/root", "/root/.ssh"} {
		if m, ok := dirs[d]; !ok || m != 0o755 {
			t.Errorf("extra initrd directory %s: mode %v (present %v), want 0755", d, m, ok)
		}
	}
	if len(ev.Logs) == 0 {
		t.Error("create logged nothing")
	}

	// Without files there is no extra initrd.
	h2 := newHarness(t)
	dir2 := t.TempDir()
	s2, _ := h2.Create(typ, b.inputs(dir2))
	if v := getEntry(t, dir2); v.HasExtra || v.ExtraPath() != "" || v.FetchDir() != "" {
		t.Errorf("entry without files has an extra initrd: %+v", v.Entry)
	}
	if got := sdktest.Outputs(t, s2)["fetchRecord"]; got != "" {
		t.Errorf("entry without files has fetchRecord %v, want \"\"", got)
	}
}

func TestDefaults(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	s, _ := h.Create(typ, map[string]any{"mac": mac, "kernel": b.Kernel, "bootDir": dir})
	v := getEntry(t, dir)
	if len(v.Initrds) != 0 || v.Initrds == nil || v.Cmdline != "" || v.HasExtra {
		t.Errorf("entry with defaults = %+v", v.Entry)
	}
	if sdktest.Outputs(t, s)["version"] != v.ID {
		t.Error("version output is not the entry's")
	}
}

func TestUpdate(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	store := bootentry.Store{Dir: dir}
	in1 := with(b.inputs(dir), "files", map[string]any{"/etc/secret": file("one", "0400")})
	s1, _ := h.Create(typ, in1)
	v1 := getEntry(t, dir)
	// A machine booting now holds version 1 (its script names it) and
	// has the extra initrd open.
	held, err := os.Open(v1.ExtraPath())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	in2 := with(in1, "cmdline", "console=ttyS1", "initrd", []any{b.Initrds[1]}, "files", map[string]any{"/etc/secret": file("two", "0440")})
	plan := h.Plan(typ, s1, in2)
	if plan.Action != resource.ActionUpdate {
		t.Fatalf("plan = %v, want update", plan.Action)
	}
	if got := pathStrings(plan.Changed); !slices.Contains(got, "cmdline") || !slices.Contains(got, "files") || !slices.Contains(got, "initrd") {
		t.Errorf("changed = %v", got)
	}
	s2, _ := h.Update(typ, s1, in2)
	v2 := getEntry(t, dir)
	if v2.ID == v1.ID || v2.Cmdline != "console=ttyS1" || !slices.Equal(v2.Initrds, []string{b.Initrds[1]}) {
		t.Fatalf("after update: %+v", v2)
	}
	if sdktest.Outputs(t, s2)["version"] != v2.ID || plannedOutputs(t, plan)["version"] != v2.ID {
		t.Errorf("version output %v, planned %v, entry %s", sdktest.Outputs(t, s2)["version"], plannedOutputs(t, plan)["version"], v2.ID)
	}
	files, _ := unpackExtra(t, v2.ExtraPath())
	if files["/etc/secret"] != (unpacked{"two", 0o440}) {
		t.Errorf("new extra initrd: %+v", files["/etc/secret"])
	}
	// The previous version stays whole for the machine booting from it.
	old, err := store.GetVersion(mac, v1.ID)
	if err != nil || old.Cmdline != v1.Cmdline {
		t.Fatalf("previous version after update: %+v, %v", old, err)
	}
	if files, _ := unpackExtra(t, old.ExtraPath()); files["/etc/secret"] != (unpacked{"one", 0o400}) {
		t.Errorf("previous extra initrd: %+v", files["/etc/secret"])
	}

	// A second update keeps the current and the previous version only;
	// what was open stays readable.
	in3 := with(in2, "cmdline", "console=ttyS2")
	h.Update(typ, s2, in3)
	if _, err := store.GetVersion(mac, v1.ID); !errors.Is(err, bootentry.ErrNotFound) {
		t.Errorf("version before the previous one: %v, want pruned", err)
	}
	if _, err := store.GetVersion(mac, v2.ID); err != nil {
		t.Errorf("previous version: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := held.Read(buf); err != nil {
		t.Errorf("an open extra initrd of a pruned version: %v", err)
	}
}

func TestDelete(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir), "files", map[string]any{"/etc/x": file("x", "")})
	s, _ := h.Create(typ, in)
	s2, _ := h.Update(typ, s, with(in, "cmdline", "other"))

	ev := h.Delete(typ, s2)
	if _, err := (bootentry.Store{Dir: dir}).Get(mac); !errors.Is(err, bootentry.ErrNotFound) {
		t.Fatalf("Get after delete: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "versions", macHyphen)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("versions left after delete: %v", err)
	}
	if len(ev.Logs) == 0 || !strings.Contains(strings.Join(ev.Logs, "\n"), "removed") {
		t.Errorf("delete logs %q", ev.Logs)
	}
	ev = h.Delete(typ, s2) // gone already: a success
	if !strings.Contains(strings.Join(ev.Logs, "\n"), "gone already") {
		t.Errorf("second delete logs %q", ev.Logs)
	}
	if r := h.Read(typ, s2); r.Exists || r.Diagnostics.HasError() {
		t.Errorf("Read after delete: exists %v, %v", r.Exists, r.Diagnostics.Err())
	}
}

func TestRead(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	store := bootentry.Store{Dir: dir}
	in := with(b.inputs(dir), "files", map[string]any{"/etc/x": file("mine", "0400")})
	s, _ := h.Create(typ, in)
	refreshed := func() *resource.State {
		t.Helper()
		r := h.Read(typ, s)
		if r.Diagnostics.HasError() {
			t.Fatalf("Read: %v", r.Diagnostics.Err())
		}
		if !r.Exists {
			return nil
		}
		return &resource.State{Inputs: s.Inputs, Outputs: r.Outputs, Private: r.Private}
	}

	// Unchanged.
	r := refreshed()
	if r == nil || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
		t.Fatalf("Read of an unchanged entry = %v, want the recorded outputs %s", r, s.Outputs.JSON)
	}
	if p := h.Plan(typ, r, in); p.Action != resource.ActionNoop {
		t.Fatalf("plan of an unchanged entry = %v", p.Action)
	}

	// Changed by someone else: same MAC, another command line and files.
	cur := getEntry(t, dir)
	other := cur.Entry
	other.Cmdline = "theirs"
	if _, err := store.Put(other, []byte("not our archive")); err != nil {
		t.Fatal(err)
	}
	r = refreshed()
	if r == nil {
		t.Fatal("Read: a changed entry is reported gone")
	}
	if got := sdktest.Outputs(t, r)["version"]; got == sdktest.Outputs(t, s)["version"] {
		t.Fatalf("Read of a changed entry reports the recorded version %v", got)
	}
	p := h.Plan(typ, r, in)
	if p.Action != resource.ActionUpdate {
		t.Fatalf("plan after a change outside = %v, want update", p.Action)
	}
	if got := pathStrings(p.Changed); !slices.Equal(got, []string{"cmdline", "files"}) {
		t.Errorf("changed = %v, want cmdline and files", got)
	}
	if plannedOutputs(t, p)["version"] != sdktest.Outputs(t, s)["version"] {
		t.Errorf("planned version %v, want the one created", plannedOutputs(t, p)["version"])
	}
	s2, _ := h.Update(typ, r, in)
	if sdktest.Outputs(t, s2)["version"] != sdktest.Outputs(t, s)["version"] || getEntry(t, dir).Cmdline != in["cmdline"] {
		t.Fatal("update after a change outside did not put the entry back")
	}

	// Damaged by hand.
	v := getEntry(t, dir)
	if err := os.WriteFile(filepath.Join(v.Dir, "entry.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = refreshed()
	if r == nil || sdktest.Outputs(t, r)["version"] == sdktest.Outputs(t, s)["version"] {
		t.Fatalf("Read of a damaged entry = %v", r)
	}
	if p := h.Plan(typ, r, in); p.Action != resource.ActionUpdate {
		t.Fatalf("plan after damage = %v, want update", p.Action)
	}
	h.Update(typ, r, in)
	if r := refreshed(); r == nil || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
		t.Fatalf("after repair: Read = %v", r)
	}

	// Removed.
	if err := store.Delete(mac); err != nil {
		t.Fatal(err)
	}
	if r := refreshed(); r != nil {
		t.Fatal("Read of a removed entry says it exists")
	}
}

func TestReadInterruptedCreate(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir), "files", map[string]any{"/etc/x": file("x", "")})
	// The engine knows the inputs only.
	interrupted := &resource.State{Inputs: resource.Values{JSON: h.JSON(in)}}
	if r := h.Read(typ, interrupted); r.Exists {
		t.Fatal("Read before anything was written: exists")
	}
	s, _ := h.Create(typ, in)
	r := h.Read(typ, interrupted)
	if !r.Exists || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
		t.Fatalf("Read after the write = exists %v, %s; want %s", r.Exists, r.Outputs.JSON, s.Outputs.JSON)
	}
	// An entry for the MAC that these inputs did not make is not ours.
	e := getEntry(t, dir).Entry
	e.Cmdline = "someone else's"
	if _, err := (bootentry.Store{Dir: dir}).Put(e, nil); err != nil {
		t.Fatal(err)
	}
	if r := h.Read(typ, interrupted); r.Exists {
		t.Fatal("Read of another entry for the MAC after an interrupted create: exists")
	}
}

func TestValidation(t *testing.T) {
	b := makeBootFiles(t)
	dir := t.TempDir()
	base := b.inputs(dir)
	files := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return with(base, "files", m)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name   string
		inputs map[string]any
		path   string
		want   string
	}{
		{"bad MAC", with(base, "mac", "52:54:00:12:34"), "mac", "MAC"},
		{"MAC with junk", with(base, "mac", "../../etc/passwd"), "mac", "MAC"},
		{"kernel missing", with(base, "kernel", missing), "kernel", "does not exist"},
		{"kernel is a directory", with(base, "kernel", dir), "kernel", "not a regular file"},
		{"kernel relative", with(base, "kernel", "bzImage"), "kernel", "absolute"},
		{"kernel empty", with(base, "kernel", ""), "kernel", "empty"},
		{"second initrd missing", with(base, "initrd", []any{b.Initrds[0], missing}), "initrd[1]", "does not exist"},
		{"first initrd a directory", with(base, "initrd", []any{dir}), "initrd[0]", "not a regular file"},
		{"initrd relative", with(base, "initrd", []any{"initrd"}), "initrd[0]", "absolute"},
		{"cmdline newline", with(base, "cmdline", "console=ttyS0\nshell"), "cmdline", "newline"},
		{"cmdline carriage return", with(base, "cmdline", "console=ttyS0\r"), "cmdline", "control"},
		{"cmdline expansion", with(base, "cmdline", "hostname=${net0/mac}"), "cmdline", "${"},
		{"relative file", files("etc/x", file("x", "")), `files."etc/x"`, "absolute"},
		{"file with ..", files("/etc/../x", file("x", "")), `files."/etc/../x"`, ".."},
		{"file ending with ..", files("/etc/..", file("x", "")), `files."/etc/.."`, ".."},
		{"unclean file", files("/etc//x", file("x", "")), `files."/etc//x"`, "clean"},
		{"file with trailing slash", files("/etc/x/", file("x", "")), `files."/etc/x/"`, "clean"},
		{"root as a file", files("/", file("x", "")), `files."/"`, "directory"},
		{"file with a newline", files("/etc/a\nb", file("x", "")), `files."/etc/a\nb"`, "control"},
		{"mode not octal", files("/x", file("x", "rw-r--r--")), `files."/x".mode`, "octal"},
		{"mode with 8", files("/x", file("x", "0648")), `files."/x".mode`, "octal"},
		{"mode too short", files("/x", file("x", "4")), `files."/x".mode`, "octal"},
		{"mode a number", files("/x", map[string]any{"contents": "x", "mode": 420}), `files."/x".mode`, "expected string"},
		{"no contents", files("/x", map[string]any{"mode": "0400"}), `files."/x".contents`, "must be set"},
		{"contents a number", files("/x", map[string]any{"contents": 3}), `files."/x".contents`, "expected string"},
		{"unknown file attribute", files("/x", map[string]any{"contents": "x", "owner": "root"}), `files."/x".owner`, "not an attribute"},
		{"file not a set", files("/x", "just a string"), `files."/x"`, "wrong type"},
		{"file below a file", files("/etc/x", file("x", ""), "/etc/x/y", file("y", "")), `files."/etc/x/y"`, "cannot be the directory"},
		{"relative bootDir", with(base, "bootDir", "boot"), "bootDir", "absolute"},
		{"unknown input", with(base, "initrds", []any{}), "initrds", "unknown input"},
		{"missing mac", with(base, "mac", nil), "mac", "missing required"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := validate(t, h, tt.inputs)
			found := false
			for _, d := range diags {
				if d.Severity == resource.SeverityError && d.Attribute.String() == tt.path && strings.Contains(d.String(), tt.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("diagnostics %q; want an error at %s containing %q", diags.Err(), tt.path, tt.want)
			}
			if got := errorPaths(diags); len(got) != 1 {
				t.Errorf("errors at %q, want one", got)
			}
			// Plan refuses the same inputs.
			if p := h.Plan(typ, nil, tt.inputs); !p.Diagnostics.HasError() {
				t.Errorf("plan accepted what validate refused")
			}
		})
	}

	// Good inputs, every notation: no diagnostics at all.
	good := files("/etc/ssh/ssh_host_ed25519_key", file("k", "0400"), "/etc/ssh/authorized_keys", file("a", ""), "/bin/x", file("#!/bin/sh", "4755"), "/a..b", file("dots in a name", "644"))
	if diags := validate(t, h, with(good, "initrd", []any{b.Initrds[0], b.Initrds[1]})); len(diags) != 0 {
		t.Errorf("good inputs: %v", diags.Err())
	}
}

func TestValidationSkipsUnknown(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir),
		"mac", nil, "kernel", nil, "cmdline", nil,
		"initrd", []any{b.Initrds[0], nil},
		"files", map[string]any{
			"/etc/ssh/ssh_host_ed25519_key": map[string]any{"contents": nil, "mode": "0400"},
			"/etc/hostname":                 nil,
			"/etc/motd":                     map[string]any{"contents": "hi", "mode": nil},
		})
	unknown := []resource.Path{
		mustPath(t, "mac"), mustPath(t, "kernel"), mustPath(t, "cmdline"), mustPath(t, "initrd[1]"),
		mustPath(t, `files."/etc/ssh/ssh_host_ed25519_key".contents`),
		mustPath(t, `files."/etc/hostname"`),
		mustPath(t, `files."/etc/motd".mode`),
	}
	if diags := validate(t, h, in, unknown...); len(diags) != 0 {
		t.Fatalf("unknown values judged: %v", diags.Err())
	}
	// Keys are always known: a bad key is an error even with an unknown value.
	bad := with(in, "files", map[string]any{"etc/x": nil})
	if diags := validate(t, h, bad, append(unknown, mustPath(t, `files."etc/x"`))...); !slices.Contains(errorPaths(diags), `files."etc/x"`) {
		t.Errorf("bad key with an unknown value: %v", diags.Err())
	}
	// The whole files set unknown.
	if diags := validate(t, h, with(b.inputs(dir), "files", nil), mustPath(t, "files")); len(diags) != 0 {
		t.Errorf("unknown files judged: %v", diags.Err())
	}
}

func TestPlan(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir), "files", map[string]any{"/etc/x": file("x", "")})
	prior, _ := h.Create(typ, in)
	version := sdktest.Outputs(t, prior)["version"]
	interrupted := &resource.State{Inputs: prior.Inputs}
	contents := mustPath(t, `files."/etc/x".contents`)

	tests := []struct {
		name           string
		prior          *resource.State
		desired        map[string]any
		unknown        []resource.Path
		action         resource.Action
		changed        []string
		replace        []string
		unknownOutputs []string
	}{
		// A create in the directory of prior's entry would be refused (the
		// MAC's entry has an owner): creates plan for an empty one.
		{"create", nil, with(in, "bootDir", t.TempDir()), nil, resource.ActionCreate, nil, nil, []string{"owner"}},
		{"create with unknown contents", nil, with(in, "bootDir", t.TempDir(), "files", map[string]any{"/etc/x": map[string]any{"contents": nil}}), []resource.Path{contents}, resource.ActionCreate, nil, nil, []string{"version", "fetchRecord", "owner"}},
		{"create with unknown mac", nil, with(in, "mac", nil), []resource.Path{resource.AttrPath("mac")}, resource.ActionCreate, nil, nil, []string{"mac", "scriptPath", "version", "fetchRecord", "installedRecord", "owner"}},
		{"no-op", prior, in, nil, resource.ActionNoop, nil, nil, nil},
		{"other MAC notation", prior, with(in, "mac", "5254.0012.3456"), nil, resource.ActionNoop, nil, nil, nil},
		{"other MAC notation and a new cmdline", prior, with(in, "mac", "52-54-00-12-34-56", "cmdline", "quiet"), nil, resource.ActionUpdate, []string{"cmdline"}, nil, nil},
		{"bootDir with a trailing slash", prior, with(in, "bootDir", dir+"/"), nil, resource.ActionNoop, nil, nil, nil},
		{"update of cmdline", prior, with(in, "cmdline", "quiet"), nil, resource.ActionUpdate, []string{"cmdline"}, nil, nil},
		{"update of kernel", prior, with(in, "kernel", b.Initrds[1]), nil, resource.ActionUpdate, []string{"kernel"}, nil, nil},
		{"update of a file mode", prior, with(in, "files", map[string]any{"/etc/x": file("x", "0400")}), nil, resource.ActionUpdate, []string{"files"}, nil, nil},
		{"default mode spelled out", prior, with(in, "files", map[string]any{"/etc/x": file("x", "0444")}), nil, resource.ActionNoop, nil, nil, nil},
		{"MAC notation and default mode", prior, with(in, "mac", "525400123456", "files", map[string]any{"/etc/x": file("x", "444")}), nil, resource.ActionNoop, nil, nil, nil},
		{"update with unknown contents", prior, with(in, "files", map[string]any{"/etc/x": map[string]any{"contents": nil}}), []resource.Path{contents}, resource.ActionUpdate, []string{"files"}, nil, []string{"version", "fetchRecord"}},
		{"replace on a new MAC", prior, with(in, "mac", "52:54:00:00:00:01"), nil, resource.ActionReplace, []string{"mac"}, []string{"mac"}, []string{"owner"}},
		{"replace on a new bootDir", prior, with(in, "bootDir", t.TempDir()), nil, resource.ActionReplace, []string{"bootDir"}, []string{"bootDir"}, []string{"owner"}},
		{"interrupted create", interrupted, in, nil, resource.ActionCreate, nil, nil, []string{"owner"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.Plan(typ, tt.prior, tt.desired, tt.unknown...)
			if p.Diagnostics.HasError() {
				t.Fatalf("plan: %v", p.Diagnostics.Err())
			}
			if p.Action != tt.action {
				t.Fatalf("action = %v, want %v", p.Action, tt.action)
			}
			if got := pathStrings(p.Changed); !slices.Equal(got, tt.changed) && !(len(got) == 0 && len(tt.changed) == 0) {
				t.Errorf("changed = %v, want %v", got, tt.changed)
			}
			if got := pathStrings(p.RequiresReplace); !slices.Equal(got, tt.replace) && !(len(got) == 0 && len(tt.replace) == 0) {
				t.Errorf("requires replace = %v, want %v", got, tt.replace)
			}
			if !slices.Equal(p.UnknownOutputs, tt.unknownOutputs) && !(len(p.UnknownOutputs) == 0 && len(tt.unknownOutputs) == 0) {
				t.Errorf("unknown outputs = %v, want %v", p.UnknownOutputs, tt.unknownOutputs)
			}
			planned := plannedOutputs(t, p)
			for _, o := range []string{"mac", "scriptPath", "version", "fetchRecord"} {
				if _, ok := planned[o]; ok == slices.Contains(tt.unknownOutputs, o) {
					t.Errorf("output %s planned %v while unknown outputs are %v", o, planned[o], p.UnknownOutputs)
				}
			}
			if !slices.Contains(tt.unknownOutputs, "mac") && (planned["mac"] != mac && planned["mac"] != "52:54:00:00:00:01" || !strings.HasPrefix(planned["scriptPath"].(string), "machine/")) {
				t.Errorf("planned outputs %v", planned)
			}
			if tt.action == resource.ActionNoop && (planned["version"] != version || planned["fetchRecord"] != sdktest.Outputs(t, prior)["fetchRecord"]) {
				t.Errorf("no-op planned version %v and fetchRecord %v, want %v and %v", planned["version"], planned["fetchRecord"], version, sdktest.Outputs(t, prior)["fetchRecord"])
			}
		})
	}
}

// TestSecretsNeverShown runs every operation, successful and failing, with
// file contents that must appear in no event, diagnostic or output.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "S3CRET-PRIVATE-KEY-MATERIAL"
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir), "files", map[string]any{"/etc/ssh/ssh_host_ed25519_key": file(secret, "0400")})
	var seen []string
	record := func(what string, ev *sdktest.Events, diags resource.Diagnostics, outputs ...[]byte) {
		t.Helper()
		if ev != nil {
			seen = append(seen, ev.Logs...)
			seen = append(seen, ev.ProgressMessages...)
		}
		for _, d := range diags {
			seen = append(seen, d.String())
		}
		for _, o := range outputs {
			seen = append(seen, string(o))
		}
		for _, s := range seen {
			if strings.Contains(s, secret) {
				t.Fatalf("%s showed the secret: %q", what, s)
			}
		}
	}

	p := h.Plan(typ, nil, in)
	record("plan", nil, p.Diagnostics, p.PlannedOutputs)
	s, ev := h.Create(typ, in)
	record("create", ev, nil, s.Outputs.JSON)
	if len(ev.Logs) == 0 {
		t.Fatal("create logged nothing: the check would prove nothing")
	}
	in2 := with(in, "files", map[string]any{"/etc/ssh/ssh_host_ed25519_key": file(secret+"2", "0400"), "/etc/ssh/other": file(secret, "")})
	s2, ev := h.Update(typ, s, in2)
	record("update", ev, nil, s2.Outputs.JSON)
	r := h.Read(typ, s2)
	record("read", nil, r.Diagnostics, r.Outputs.JSON)
	record("delete", h.Delete(typ, s2), nil)

	// Failing validation of other parts of the same file and of others.
	for _, bad := range []map[string]any{
		with(in, "files", map[string]any{"/etc/x": file(secret, "bad-mode")}),
		with(in, "files", map[string]any{"etc/x": file(secret, "")}),
		with(in, "files", map[string]any{"/x": map[string]any{"contents": secret, "owner": secret}}),
		with(in, "files", map[string]any{"/x": secret}),
		with(in, "files", map[string]any{"/x": map[string]any{"contents": []any{secret}}}),
		with(in, "files", secret),
		with(in, "kernel", filepath.Join(dir, "nope")),
	} {
		diags := validate(t, h, bad)
		if !diags.HasError() {
			t.Fatalf("inputs %v validated", bad["files"] != nil)
		}
		record("validate", nil, diags)
		r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: typ, Name: "test", Inputs: resource.Values{JSON: h.JSON(bad)}}, &sdktest.Events{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Diagnostics.HasError() {
			t.Fatal("create of bad inputs succeeded")
		}
		record("failing create", nil, r.Diagnostics)
	}
}

// TestFetchRecordIsNotDrift: the boot server writes who fetched a
// version into its fetch record, and nixos.host-key seals it; neither
// changes the entry's content, so Read reports the recorded version and
// the plan has nothing to do. Applying the same entry again keeps the
// record (the seal too: re-applying does not hand the archive out again),
// and a version made before fetch records existed gets one.
func TestFetchRecordIsNotDrift(t *testing.T) {
	for _, tc := range []struct {
		name string
		// touch changes the record as the boot server or host-key would.
		touch func(t *testing.T, dir string)
		// sealed says whether the record is sealed afterwards.
		sealed bool
	}{
		{"claimed", func(t *testing.T, dir string) {
			if _, fresh, err := bootentry.Claim(dir, bootentry.FetchEvent{Address: "192.0.2.7", Protocol: "tftp", Time: time.Now()}); err != nil || !fresh {
				t.Fatalf("Claim: fresh %v, %v", fresh, err)
			}
			if err := bootentry.AppendEvent(dir, bootentry.FetchEvent{Kind: bootentry.EventRefused, Address: "192.0.2.66", Protocol: "http", Time: time.Now(), Reason: "not its archive"}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"sealed", func(t *testing.T, dir string) {
			if err := bootentry.Seal(dir, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"made before fetch records", func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := makeBootFiles(t)
			dir := t.TempDir()
			in := with(b.inputs(dir), "files", map[string]any{"/etc/ssh/ssh_host_ed25519_key": file("PRIVATE KEY\n", "0400")})
			s, _ := h.Create(typ, in)
			record := sdktest.Outputs(t, s)["fetchRecord"].(string)
			tc.touch(t, record)

			r := h.Read(typ, s)
			if r.Diagnostics.HasError() || !r.Exists || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
				t.Fatalf("Read = exists %v, %s, %v; want the recorded outputs %s", r.Exists, r.Outputs.JSON, r.Diagnostics.Err(), s.Outputs.JSON)
			}
			read := &resource.State{Inputs: s.Inputs, Outputs: r.Outputs}
			if p := h.Plan(typ, read, in); p.Action != resource.ActionNoop {
				t.Fatalf("plan = %v (changed %v), want no-op", p.Action, pathStrings(p.Changed))
			}
			// An update with the same content (the engine may call it
			// for another reason) writes the same version.
			s2, _ := h.Update(typ, read, in)
			if sdktest.Outputs(t, s2)["fetchRecord"] != record {
				t.Errorf("after the update fetchRecord = %v, want %s", sdktest.Outputs(t, s2)["fetchRecord"], record)
			}
			rec, err := bootentry.ReadFetchRecord(record)
			if err != nil {
				t.Fatalf("the fetch record after the update: %v", err)
			}
			if rec.Sealed != tc.sealed {
				t.Errorf("after the update sealed = %v, want %v", rec.Sealed, tc.sealed)
			}
		})
	}
}

// TestDefaultEntry: mac = "default" (any case) makes the default entry,
// under entries/default, with its outputs known at plan time; a delete
// removes it.
func TestDefaultEntry(t *testing.T) {
	h := newHarness(t)
	b := makeBootFiles(t)
	dir := t.TempDir()
	in := with(b.inputs(dir), "mac", "Default", "files", map[string]any{"/etc/landscaper/enroll-token": file("token-0123456789abcdef\n", "0400")})
	if diags := validate(t, h, in); diags.HasError() {
		t.Fatalf("validate: %v", diags.Err())
	}
	plan := h.Plan(typ, nil, in)
	if plan.Diagnostics.HasError() || plan.Action != resource.ActionCreate {
		t.Fatalf("plan = %v, %v", plan.Action, plan.Diagnostics.Err())
	}
	s, _ := h.Create(typ, in)
	out := sdktest.Outputs(t, s)
	if out["mac"] != bootentry.DefaultKey || out["scriptPath"] != "machine/default.ipxe" {
		t.Fatalf("outputs %v", out)
	}
	v, err := (bootentry.Store{Dir: dir}).Get(bootentry.DefaultKey)
	if err != nil || !v.HasExtra || v.Kernel != b.Kernel {
		t.Fatalf("the default entry: %+v, %v", v, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "entries", "default")); err != nil {
		t.Fatalf("entries/default: %v", err)
	}
	if p := h.Plan(typ, s, with(in, "mac", "DEFAULT")); p.Action != resource.ActionNoop {
		t.Errorf("another spelling of default plans %v", p.Action)
	}
	h.Delete(typ, s)
	if _, err := (bootentry.Store{Dir: dir}).Get(bootentry.DefaultKey); !errors.Is(err, bootentry.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
