package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// These tests run the real landscaper binary, with the real providers and
// the real nix.

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// landscaper runs the binary in dir with extra environment variables.
func landscaper(t *testing.T, dir string, extraEnv []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testbin.Dir(t), "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = append(testbin.Env(), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("landscaper %s timed out\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out.String(), errb.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// deploymentDir writes landscaper.nix into a new directory.
func deploymentDir(t *testing.T, nix string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(nix), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const chainNix = `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  members.key = { type = providers.ssh-keypair.keypair; inputs = { }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "${members.a.outputs.sha256} ${members.key.outputs.publicKey}"; }; };
  members.grp.members.c = { type = providers.local.exec; inputs = { executable = "echo"; args = [ members.b.outputs.sha256 ]; }; };
}
`

// TestValidate: validate checks the deployment, as plan does, and changes
// nothing: no state, no files.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		nix    string
		args   []string
		code   int
		want   []string // in stdout when code is 0, in stderr otherwise
		unwant []string
	}{
		{name: "valid", nix: chainNix, want: []string{"The deployment is valid.\n"}},
		{name: "computed from an output", nix: `{ members, providers, ... }: {
  members.x = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "x" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = builtins.hashString "sha256" members.x.outputs.stdout; }; };
}`, want: []string{"The deployment is valid.", "The inputs of h are computed, in part or whole, from outputs known only after apply"}},
		{name: "computed from an output, a wrong input beside", nix: `{ members, providers, ... }: {
  members.x = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "x" ]; }; };
  members.h = { type = providers.local.file; inputs = { nme = "out/h"; contents = builtins.hashString "sha256" members.x.outputs.stdout; }; };
}`, code: 1, want: []string{`member h (local.file): inputs.nme: unknown input: "nme" is not an input of this resource type`}},
		{name: "unknown input", nix: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contnts = "x"; }; };
}`, code: 1, want: []string{"the deployment is not valid", `member a (local.file): inputs.contnts: unknown input: "contnts" is not an input of this resource type`}},
		{name: "invalid value", nix: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  members.k = { type = providers.ssh-keypair.keypair; inputs = { algorithm = "dsa"; }; };
}`, code: 1, want: []string{`member k (ssh-keypair.keypair): inputs.algorithm: unknown key algorithm`}, unwant: []string{"member a"}},
		{name: "wrong type", nix: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = 3; contents = "a"; }; };
}`, code: 1, want: []string{"member a (local.file): inputs.name"}},
		{name: "unknown type", nix: `{ members, providers, ... }: {
  members.a = { type = "local.fiel"; inputs = { }; };
}`, code: 1, want: []string{`member a: provider local has no resource type "fiel"`}},
		{name: "cycle", nix: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = members.b.outputs.sha256; }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = members.a.outputs.sha256; }; };
}`, code: 1, want: []string{"dependency cycle"}},
		{name: "unknown top-level attribute", nix: `{ members, providers, ... }: {
  member.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
}`, code: 1, want: []string{"unknown top-level attribute \"member\" in the deployment; did you mean `members`?"}},
		{name: "misspelt rollouts", nix: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  rollout.fleet = { members = [ "a" ]; };
}`, code: 1, want: []string{"unknown top-level attribute \"rollout\" in the deployment; did you mean `rollouts`?"}},
		// `imports` (or `options`, `config`) makes the deployment a module:
		// its definitions merge, and an option no module declares is an
		// error naming the file that defines it.
		{name: "imports", nix: `{ members, providers, ... }: {
  imports = [ ];
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
}`, want: []string{"The deployment is valid."}},
		{name: "module with an undeclared option", nix: `{ members, providers, ... }: {
  imports = [ ];
  memebrs.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
}`, code: 1, want: []string{"option `memebrs` does not exist (defined in ", "landscaper.nix); did you mean `members`?"}},
		{name: "not an attribute set", nix: `{ ... }: [ ]`, code: 1, want: []string{"the deployment must return an attribute set"}},
		{name: "known top-level attributes", nix: `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  providers = { };
  rollouts.fleet = { members = [ "a" ]; };
}`, want: []string{"The deployment is valid."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := deploymentDir(t, tc.nix)
			stdout, stderr, code := landscaper(t, dir, nil, append([]string{"validate"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			where := stdout
			if tc.code != 0 {
				where = stderr
			}
			for _, w := range tc.want {
				if !strings.Contains(where, w) {
					t.Errorf("output does not say %q:\n%s", w, where)
				}
			}
			for _, u := range tc.unwant {
				if strings.Contains(where, u) {
					t.Errorf("output says %q:\n%s", u, where)
				}
			}
			for _, p := range []string{".landscaper", "out"} {
				if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
					t.Errorf("validate made %s", p)
				}
			}
		})
	}
}

// TestUnknownTopLevelAttributeStopsPlan: plan refuses it too, before
// anything is planned.
func TestUnknownTopLevelAttributeStopsPlan(t *testing.T) {
	dir := deploymentDir(t, `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "a"; }; };
  memebrs.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "b"; }; };
}`)
	_, stderr, code := landscaper(t, dir, nil, "plan")
	if code != 1 || !strings.Contains(stderr, "unknown top-level attribute \"memebrs\" in the deployment; did you mean `members`?") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestValidateJSON(t *testing.T) {
	type result struct {
		Valid       bool                `json:"valid"`
		Diagnostics []map[string]string `json:"diagnostics"`
		Members     int                 `json:"members"`
		Unchecked   []string            `json:"unchecked"`
	}
	dir := deploymentDir(t, chainNix)
	stdout, stderr, code := landscaper(t, dir, nil, "validate", "--json")
	var r result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if !r.Valid || r.Members != 4 || len(r.Diagnostics) != 0 || r.Unchecked == nil {
		t.Errorf("valid deployment: %+v", r)
	}

	dir = deploymentDir(t, `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contnts = "x"; }; };
  members.k = { type = providers.ssh-keypair.keypair; inputs = { algorithm = "dsa"; }; };
}`)
	stdout, stderr, code = landscaper(t, dir, nil, "validate", "--json")
	r = result{}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != 1 {
		t.Fatalf("exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if r.Valid || len(r.Diagnostics) != 2 || stderr != "" {
		t.Fatalf("invalid deployment: %+v, stderr %q", r, stderr)
	}
	if !strings.HasPrefix(r.Diagnostics[0]["message"], "member a (local.file): inputs.contnts") || !strings.HasPrefix(r.Diagnostics[1]["message"], "member k (ssh-keypair.keypair): inputs.algorithm") {
		t.Errorf("diagnostics: %+v", r.Diagnostics)
	}
}

// TestValidateLeavesTheStateAlone: validate neither takes the lock nor
// settles interrupted operations (which would ask a provider), and uses
// the recorded outputs it finds.
func TestValidateLeavesTheStateAlone(t *testing.T) {
	dir := deploymentDir(t, chainNix)
	if _, stderr, code := landscaper(t, dir, nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	path := filepath.Join(dir, ".landscaper", "state.json")
	ctx := context.Background()
	b := state.NewFile(path)
	st, err := b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Pending["grp.c"] = &state.Pending{Operation: state.OpUpdate, Type: "local.exec", Provider: "local", Inputs: st.Resources["grp.c"].Inputs, Since: time.Now().UTC()}
	if err := b.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	unlock, err := b.Lock(ctx, state.LockInfo{PID: 1, Host: "elsewhere", Command: "landscaper apply"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"validate", "graph"} {
		if stdout, stderr, code := landscaper(t, dir, nil, cmd); code != 0 {
			t.Errorf("%s with the state locked and an interrupted operation: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, code, stdout, stderr)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the state changed")
	}
}

func TestGraph(t *testing.T) {
	dir := deploymentDir(t, chainNix)
	stdout, stderr, code := landscaper(t, dir, nil, "graph")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := `digraph "landscaper" {
  // The members of the deployment; an edge goes from a member to one whose outputs it uses.
  rankdir = "RL";
  node [shape = "box"];
  "a" [label = "\N\nlocal.file"];
  "b" [label = "\N\nlocal.file"];
  "grp.c" [label = "\N\nlocal.exec"];
  "key" [label = "\N\nssh-keypair.keypair"];
  "b" -> "a";
  "b" -> "key";
  "grp.c" -> "b";
}
`
	if stdout != want {
		t.Errorf("graph:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestGraphQuotesNames: names that hold quotes, backslashes and control
// characters stay inside their DOT strings and cannot act on a terminal.
func TestGraphQuotesNames(t *testing.T) {
	dir := deploymentDir(t, `{ members, providers, ... }: let esc = builtins.fromJSON "\"\\u001b[2J\""; in {
  members."q\"uote\\" = { type = providers.local.file; inputs = { name = "out/q"; contents = "q"; }; };
  members.${"e" + esc} = { type = providers.local.file; inputs = { name = "out/e"; contents = members."q\"uote\\".outputs.sha256; }; };
}`)
	stdout, stderr, code := landscaper(t, dir, nil, "graph")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, w := range []string{
		`  "q\"uote\\" [label = "\N\nlocal.file"];`,
		`  "e\x1b[2J" [label = "\N\nlocal.file"];`,
		`  "e\x1b[2J" -> "q\"uote\\";`,
	} {
		if !strings.Contains(stdout, w+"\n") {
			t.Errorf("graph does not hold %s:\n%s", w, stdout)
		}
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("graph holds an escape character: %q", stdout)
	}
}

func TestDotQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web.a", `"web.a"`},
		{`a"b`, `"a\"b"`},
		{`ends\`, `"ends\\"`},
		{`\"`, `"\\\""`},
		{"tab\there", `"tab\there"`},
		{"bidi\u202e", `"bidi\u202e"`},
		{"bad\xff", `"bad\xff"`},
		{"grüße", `"grüße"`},
	}
	for _, tc := range tests {
		if got := dotQuote(tc.in); got != tc.want {
			t.Errorf("dotQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestShowTrace: --show-trace reaches nix-instantiate for the commands
// that evaluate, and only with the flag.
func TestShowTrace(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Fatal(err)
	}
	wrapDir := t.TempDir()
	logPath := filepath.Join(wrapDir, "args.log")
	script := "#!/bin/sh\necho \"$*\" >> '" + logPath + "'\nexec '" + nix + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(wrapDir, "nix-instantiate"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + wrapDir + string(os.PathListSeparator) + os.Getenv("PATH")
	dir := deploymentDir(t, `{ members, providers, ... }: let f = x: x.foo; in {
  members.a = { type = providers.local.file; inputs = { name = f 3; contents = "a"; }; };
}`)
	tests := []struct {
		args  []string
		trace bool
	}{
		{[]string{"validate"}, false},
		{[]string{"validate", "--show-trace"}, true},
		{[]string{"plan", "--show-trace"}, true},
		{[]string{"apply", "--auto-approve", "--show-trace"}, true},
		{[]string{"graph", "--show-trace"}, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_ = os.Remove(logPath)
			_, stderr, code := landscaper(t, dir, []string{path}, tc.args...)
			if code != 1 || !strings.Contains(stderr, "value is an integer while a set was expected") {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			log, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatalf("nix-instantiate was not run through the wrapper: %v", err)
			}
			if got := strings.Contains(string(log), "--show-trace"); got != tc.trace {
				t.Errorf("--show-trace passed to nix-instantiate: %v, want %v\n%s", got, tc.trace, log)
			}
			if got := strings.Contains(stderr, "while evaluating"); got != tc.trace {
				t.Errorf("stack trace shown: %v, want %v\n%s", got, tc.trace, stderr)
			}
		})
	}
}

// TestChdir: --chdir DIR works from anywhere, for the deployment, the
// state and the providers' relative paths; output reads what apply
// recorded.
func TestChdir(t *testing.T) {
	dir := deploymentDir(t, chainNix)
	elsewhere := t.TempDir()
	for _, args := range [][]string{
		{"--chdir", dir, "validate"},
		{"-chdir=" + dir, "apply", "--auto-approve"},
		{"--chdir=" + dir, "plan", "--detailed-exitcode"},
	} {
		if stdout, stderr, code := landscaper(t, elsewhere, nil, args...); code != 0 {
			t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "a")); err != nil {
		t.Errorf("out/a is not in the deployment's directory: %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("files made in the working directory: %v", entries)
	}
	stdout, stderr, code := landscaper(t, elsewhere, nil, "--chdir", dir, "output", "--raw", "a.path")
	if code != 0 || stdout != filepath.Join(dir, "out", "a") {
		t.Errorf("output --raw a.path: exit %d, %q\n%s", code, stdout, stderr)
	}
	stdout, _, code = landscaper(t, elsewhere, nil, "--chdir", dir, "output")
	if code != 0 || !strings.Contains(stdout, "key.privateKey = (sensitive)\n") || strings.Contains(stdout, "PRIVATE KEY") {
		t.Errorf("output: exit %d\n%s", code, stdout)
	}
	if _, stderr, code := landscaper(t, elsewhere, nil, "--chdir", filepath.Join(dir, "nope"), "validate"); code != 1 || !strings.Contains(stderr, "--chdir: chdir") {
		t.Errorf("--chdir to nowhere: exit %d\n%s", code, stderr)
	}
}

// TestStateMvKeepsTheMember: after state mv and the same rename in the
// deployment, the plan changes nothing: the member was not replaced.
func TestStateMvKeepsTheMember(t *testing.T) {
	dir := deploymentDir(t, chainNix)
	if _, stderr, code := landscaper(t, dir, nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if stdout, stderr, code := landscaper(t, dir, nil, "state", "mv", "a", "web.first"); code != 0 || !strings.Contains(stdout, "The dependencies of b now name web.first.") {
		t.Fatalf("state mv: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	renamed := strings.ReplaceAll(strings.ReplaceAll(chainNix, "members.a =", "members.web.members.first ="), "members.a.outputs", "members.web.members.first.outputs")
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := landscaper(t, dir, nil, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the rename: exit %d, want 0 (no changes)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
