package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// relativeDeployment writes files and runs a command whose paths are all
// relative: to the deployment's directory, whatever directory landscaper
// runs in.
const relativeDeployment = `{ members, providers, ... }: {
  members.file = { type = providers.local.file; inputs = { name = "out/file.txt"; contents = "relative\n"; }; };
  members.cmd = {
    type = providers.local.exec;
    inputs = {
      executable = "sh";
      args = [ "-c" "mkdir -p out && pwd > out/cmd.txt" ];
      destroy = { executable = "rm"; args = [ "out/cmd.txt" ]; };
    };
  };
}
`

// TestRelativePathsFollowTheDeployment: relative paths in inputs are
// relative to the deployment's directory: an apply run from elsewhere
// writes there, a plan from the deployment's directory or from elsewhere
// finds nothing to do, and a destroy that finds the state alone (from yet
// another directory) removes what was made there.
func TestRelativePathsFollowTheDeployment(t *testing.T) {
	t.Parallel()
	dir, elsewhere := t.TempDir(), t.TempDir()
	writeFile(t, dir, "landscaper.nix", relativeDeployment)
	file := filepath.Join(dir, "landscaper.nix")

	mustRun(t, elsewhere, 0, "apply", "--auto-approve", "--file", file)
	wantFile(t, dir, "out/file.txt", "relative\n")
	wantFile(t, dir, "out/cmd.txt", dir+"\n")
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the apply run in %s wrote there: %v", elsewhere, entries)
	}
	for _, c := range []struct {
		name, in string
		args     []string
	}{
		{"from the deployment's directory", dir, nil},
		{"from elsewhere", elsewhere, []string{"--file", file}},
		{"from elsewhere, relative --file", filepath.Dir(dir), []string{"--file", filepath.Join(filepath.Base(dir), "landscaper.nix")}},
	} {
		if stdout, stderr, code := run(t, c.in, append([]string{"plan", "--detailed-exitcode"}, c.args...)...); code != 0 {
			t.Errorf("plan %s: exit %d, want 0 (no changes)\nstdout:\n%s\nstderr:\n%s", c.name, code, stdout, stderr)
		}
	}
	var f struct {
		Outputs map[string]string `json:"outputs"`
	}
	out, _ := mustRun(t, dir, 0, "state", "show", "file")
	if err := json.Unmarshal([]byte(out), &f); err != nil || f.Outputs["path"] != filepath.Join(dir, "out", "file.txt") {
		t.Errorf("state show file: outputs %v (%v), want path %s", f.Outputs, err, filepath.Join(dir, "out", "file.txt"))
	}

	mustRun(t, t.TempDir(), 0, "destroy", "--auto-approve", "--state", statePath(dir))
	wantNoFile(t, dir, "out/file.txt")
	wantNoFile(t, dir, "out/cmd.txt")
}

// flakeNix is a flake without inputs whose deployment is landscaper.nix.
const flakeNix = `{ outputs = { self }: { landscaper = import ./landscaper.nix; }; }
`

// gitInit makes dir a git repository that tracks the given files.
func gitInit(t *testing.T, dir string, files ...string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (scripts/install-deps.sh installs it)")
	}
	for _, args := range [][]string{{"init", "-q", "."}, append([]string{"add", "--"}, files...)} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRelativeFlake: --flake takes relative references (".", "./dir", a
// directory's name) as nix's command line does; the deployment's directory
// is the flake's, for the state and for relative paths in inputs.
func TestRelativeFlake(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "deploy")
	writeFile(t, dir, "landscaper.nix", relativeDeployment)
	writeFile(t, dir, "flake.nix", flakeNix)
	gitInit(t, dir, "flake.nix", "landscaper.nix")

	mustRun(t, dir, 0, "apply", "--auto-approve", "--flake", ".")
	wantFile(t, dir, "out/file.txt", "relative\n")
	if stateBytes(t, dir) == nil {
		t.Fatalf("no state beside the flake")
	}
	for _, c := range []struct{ in, ref string }{
		{dir, "."},
		{parent, "./deploy"},
		{parent, "deploy"},
		{t.TempDir(), dir},
		{filepath.Join(dir, "out"), ".."},
	} {
		if stdout, stderr, code := run(t, c.in, "plan", "--detailed-exitcode", "--flake", c.ref); code != 0 {
			t.Errorf("plan --flake %s in %s: exit %d, want 0 (no changes)\nstdout:\n%s\nstderr:\n%s", c.ref, c.in, code, stdout, stderr)
		}
	}
	mustRun(t, parent, 0, "destroy", "--auto-approve", "--flake", "./deploy")
	wantNoFile(t, dir, "out/file.txt")
}

// TestFailedRunLeavesNoStateDirectory: a run that fails before it changed
// anything leaves no .landscaper directory behind; nor does a flake that nix
// would copy into the store with the state in it get evaluated.
func TestFailedRunLeavesNoStateDirectory(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files map[string]string
		args  []string
		want  string
	}{
		{"nix error", map[string]string{"landscaper.nix": "{ members, ... }: { members.a = throw \"oops\"; }\n"}, []string{"plan"}, "oops"},
		{"unknown input", map[string]string{"landscaper.nix": `{ providers, ... }: { members.a = { type = providers.local.file; inputs = { nme = "x"; }; }; }` + "\n"}, []string{"apply", "--auto-approve"}, "nme"},
		{"no such flake", nil, []string{"plan", "--flake", "./missing"}, "holds no flake.nix"},
		{"flake copied whole into the store", map[string]string{"landscaper.nix": relativeDeployment, "flake.nix": flakeNix}, []string{"plan", "--flake", "."}, "in no git repository"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, text := range c.files {
				writeFile(t, dir, name, text)
			}
			_, stderr, code := run(t, dir, c.args...)
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("landscaper %s: exit %d, want 1 with an error saying %q:\n%s", strings.Join(c.args, " "), code, c.want, stderr)
			}
			wantNoFile(t, dir, ".landscaper")
		})
	}
}

const twoFiles = `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a\n"; }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "b uses ${members.a.outputs.sha256}\n"; }; };
  members.c = { type = providers.local.file; inputs = { name = "out/c"; contents = "c\n"; }; };
}
`

// TestPlanDestroy: plan --destroy shows what destroy would delete and
// changes nothing; --detailed-exitcode says whether there is anything.
func TestPlanDestroy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", twoFiles)
	mustRun(t, dir, 0, "apply", "--auto-approve")
	before := stateBytes(t, dir)
	snap := snapshot(t, dir, "out")

	cases := []struct {
		args []string
		want map[string]string
	}{
		{nil, map[string]string{"a": "delete", "b": "delete", "c": "delete"}},
		{[]string{"--target", "a"}, map[string]string{"a": "delete", "b": "delete"}},
	}
	for _, c := range cases {
		stdout, _ := mustRun(t, dir, 2, append([]string{"plan", "--destroy", "--detailed-exitcode", "--json"}, c.args...)...)
		if got := actions(planOf(t, events(t, stdout))); !mapsEqual(got, c.want) {
			t.Errorf("plan --destroy %v: actions %v, want %v", c.args, got, c.want)
		}
	}
	stdout, _ := mustRun(t, dir, 2, "plan", "--destroy", "--detailed-exitcode")
	if !strings.Contains(stdout, "0 to add, 0 to change, 3 to destroy") {
		t.Errorf("plan --destroy text does not count 3 to destroy:\n%s", stdout)
	}
	if !bytes.Equal(stateBytes(t, dir), before) {
		t.Errorf("plan --destroy changed the state")
	}
	for name, s := range snap {
		if !untouched(t, dir, s, name) {
			t.Errorf("plan --destroy touched %s", name)
		}
	}
	mustRun(t, dir, 2, "plan", "--destroy", "--refresh-only")
	mustRun(t, dir, 0, "destroy", "--auto-approve")
	mustRun(t, dir, 0, "plan", "--destroy", "--detailed-exitcode")
}

// TestRefreshOnly: plan --refresh-only shows what changed outside
// Landscaper (outputs changed, members gone) and changes nothing; apply
// --refresh-only records it in the state without creating, updating or
// deleting anything.
func TestRefreshOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", twoFiles)
	mustRun(t, dir, 0, "apply", "--auto-approve")
	mustRun(t, dir, 0, "plan", "--refresh-only", "--detailed-exitcode")

	writeFile(t, dir, "out/a", "theirs\n")
	if err := os.Remove(filepath.Join(dir, "out", "c")); err != nil {
		t.Fatal(err)
	}
	before := stateBytes(t, dir)
	stdout, _ := mustRun(t, dir, 2, "plan", "--refresh-only", "--detailed-exitcode", "--json")
	p := planOf(t, events(t, stdout))
	if !strings.Contains(stdout, `"refresh_only":true`) {
		t.Errorf("refresh-only plan --json does not say refresh_only:\n%s", stdout)
	}
	if len(p.Changes) != 0 || len(p.Drift) != 2 ||
		!strings.Contains(p.Drift[0], "a (local.file) changed outside landscaper: outputs.sha256: \""+sha256Hex("a\n")+"\" -> \""+sha256Hex("theirs\n")+"\"") ||
		!strings.Contains(p.Drift[1], "c (local.file) no longer exists") {
		t.Errorf("refresh-only plan: changes %v, drift %q; want no changes, a's hash changed and c gone", p.Changes, p.Drift)
	}
	stdout, _ = mustRun(t, dir, 2, "plan", "--refresh-only", "--detailed-exitcode", "--json", "--target", "c")
	if p := planOf(t, events(t, stdout)); len(p.Drift) != 1 || !strings.Contains(p.Drift[0], "c (local.file)") {
		t.Errorf("refresh-only plan of --target c: drift %q, want c's alone", p.Drift)
	}
	text, _ := mustRun(t, dir, 2, "plan", "--refresh-only", "--detailed-exitcode")
	if !strings.Contains(text, "refresh-only") || strings.Contains(text, "to add") {
		t.Errorf("refresh-only plan text:\n%s", text)
	}
	if !bytes.Equal(stateBytes(t, dir), before) {
		t.Errorf("plan --refresh-only changed the state")
	}

	stdout, _ = mustRun(t, dir, 0, "apply", "--refresh-only", "--auto-approve", "--json")
	if s, ok := summaryOf(events(t, stdout)); !ok || s.Created+s.Updated+s.Replaced+s.Deleted != 0 {
		t.Errorf("apply --refresh-only summary %+v (found %v), want nothing created, updated or deleted", s, ok)
	}
	wantFile(t, dir, "out/a", "theirs\n")
	wantNoFile(t, dir, "out/c")
	if got := stateMembers(t, dir); !sameStrings(got, []string{"a", "b"}) {
		t.Errorf("state after apply --refresh-only = %v, want a and b (c forgotten)", got)
	}
	out, _ := mustRun(t, dir, 0, "state", "show", "a")
	if !strings.Contains(out, sha256Hex("theirs\n")) {
		t.Errorf("state show a does not record the hash of what a holds now:\n%s", out)
	}
	mustRun(t, dir, 0, "plan", "--refresh-only", "--detailed-exitcode")
	stdout, _ = mustRun(t, dir, 2, "plan", "--detailed-exitcode", "--json")
	if got := actions(planOf(t, events(t, stdout))); got["a"] != "update" || got["c"] != "create" || got["b"] != "no-op" {
		t.Errorf("plan after apply --refresh-only: %v, want a updated, c created, b unchanged", got)
	}

	for _, args := range [][]string{
		{"plan", "--refresh-only", "--replace", "a"},
		{"apply", "--refresh-only", "--refresh=false", "--auto-approve"},
	} {
		if _, stderr, code := run(t, dir, args...); code != 2 || !strings.Contains(stderr, "exclude each other") {
			t.Errorf("landscaper %s: exit %d, want 2 saying the flags exclude each other:\n%s", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestFailedMemberLeavesNothingPending: the pending records an apply
// writes ahead, for operations whose inputs are known, go again for the
// members whose operation never started (skipped after a failure): state
// list shows nothing interrupted.
func TestFailedMemberLeavesNothingPending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "blocker", "a file where a directory should be\n")
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.bad = { type = providers.local.file; inputs = { name = "blocker/bad"; contents = "x\n"; }; };
  members.after = { type = providers.local.file; inputs = { name = "out/after"; contents = "after ${members.bad.outputs.sha256}\n"; }; };
}
`)
	stdout, _, code := run(t, dir, "apply", "--auto-approve", "--json")
	if code != 1 {
		t.Fatalf("apply: exit %d, want 1\n%s", code, stdout)
	}
	if got := membersWith(events(t, stdout), "skipped"); !sameStrings(got, []string{"after"}) {
		t.Errorf("skipped = %v, want after", got)
	}
	var doc struct {
		Pending map[string]json.RawMessage `json:"pending"`
	}
	if err := json.Unmarshal(stateBytes(t, dir), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Pending) != 0 {
		t.Errorf("the state holds pending records for %v; bad failed and after never started", keysOf(doc.Pending))
	}
	if out, _ := mustRun(t, dir, 0, "state", "list"); strings.Contains(out, "interrupted") {
		t.Errorf("state list shows interrupted operations:\n%s", out)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
