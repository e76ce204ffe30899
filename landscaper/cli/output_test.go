package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// writeState writes a state file with the given records and pending
// operations in a private directory of its own and returns its path.
func writeState(t *testing.T, resources map[string]*state.Resource, pending map[string]*state.Pending) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	b := state.NewFile(path)
	st, err := b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for n, r := range resources {
		st.Resources[n] = r
	}
	for n, p := range pending {
		st.Pending[n] = p
	}
	if err := b.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	return path
}

// outputState is a state with plain, sensitive, partly sensitive, nested
// and oddly named members.
func outputState(t *testing.T) string {
	return writeState(t, map[string]*state.Resource{
		"a": {Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`),
			Outputs: json.RawMessage(`{"path":"/srv/a","sha256":"abc","size":12345678901234567890}`)},
		"key": {Type: "ssh-keypair.keypair", Provider: "ssh-keypair", Inputs: json.RawMessage(`{}`),
			Outputs:          json.RawMessage(`{"publicKey":"ssh-ed25519 AAAA","privateKey":"-----BEGIN KEY-----\nsecret\n","fingerprint":"SHA256:x"}`),
			SensitiveOutputs: []resource.Path{resource.AttrPath("privateKey")}},
		"grp.c": {Type: "local.exec", Provider: "local", Inputs: json.RawMessage(`{}`),
			Outputs:          json.RawMessage(`{"stdout":"line\n","env":{"user":"u","token":"t0k"},"list":[1,2]}`),
			SensitiveOutputs: []resource.Path{resource.AttrPath("env").Attr("token")}},
		"\x1b[31mred": {Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`),
			Outputs: json.RawMessage(`{"path":"evil\u001b[2J"}`)},
	}, nil)
}

func TestOutput(t *testing.T) {
	path := outputState(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // the whole of stdout, when code is 0
		stderr string // a part of stderr, when code is not 0
	}{
		{name: "all", args: []string{"output"}, stdout: `"\x1b[31mred".path = "evil\u001b[2J"
a.path = "/srv/a"
a.sha256 = "abc"
a.size = 12345678901234567890
grp.c.env = {
  "token": "(sensitive)",
  "user": "u"
}
grp.c.list = [
  1,
  2
]
grp.c.stdout = "line\n"
key.fingerprint = "SHA256:x"
key.privateKey = (sensitive)
key.publicKey = "ssh-ed25519 AAAA"
`},
		{name: "member", args: []string{"output", "key"}, stdout: "fingerprint = \"SHA256:x\"\nprivateKey = (sensitive)\npublicKey = \"ssh-ed25519 AAAA\"\n"},
		{name: "nested member", args: []string{"output", "grp.c"}, stdout: "env = {\n  \"token\": \"(sensitive)\",\n  \"user\": \"u\"\n}\nlist = [\n  1,\n  2\n]\nstdout = \"line\\n\"\n"},
		{name: "one value", args: []string{"output", "key.publicKey"}, stdout: "\"ssh-ed25519 AAAA\"\n"},
		{name: "nested value", args: []string{"output", "grp.c.stdout"}, stdout: "\"line\\n\"\n"},
		{name: "sensitive value", args: []string{"output", "key.privateKey"}, stdout: "(sensitive)\n"},
		{name: "sensitive value shown", args: []string{"output", "--show-sensitive", "key.privateKey"}, stdout: "\"-----BEGIN KEY-----\\nsecret\\n\"\n"},
		{name: "raw", args: []string{"output", "--raw", "grp.c.stdout"}, stdout: "line\n"},
		{name: "raw number", args: []string{"output", "--raw", "a.size"}, stdout: "12345678901234567890"},
		{name: "raw sensitive refused", args: []string{"output", "--raw", "key.privateKey"}, code: 1, stderr: "output key.privateKey is sensitive; add --show-sensitive to print it"},
		{name: "raw sensitive shown", args: []string{"output", "--raw", "--show-sensitive", "key.privateKey"}, stdout: "-----BEGIN KEY-----\nsecret\n"},
		{name: "raw partly sensitive refused", args: []string{"output", "--raw", "grp.c.env"}, code: 1, stderr: "is sensitive"},
		{name: "raw object refused", args: []string{"output", "--raw", "--show-sensitive", "grp.c.env"}, code: 1, stderr: "the value is a list or an object"},
		{name: "raw keeps control characters off a terminal", args: []string{"output", "--raw", "\x1b[31mred.path"}, stdout: "evil\x1b[2J"},
		{name: "json value", args: []string{"output", "--json", "grp.c.list"}, stdout: "[\n  1,\n  2\n]\n"},
		{name: "json sensitive refused", args: []string{"output", "--json", "key.privateKey"}, code: 1, stderr: "is sensitive"},
		{name: "json member", args: []string{"output", "--json", "key"}, stdout: `{
  "fingerprint": {
    "sensitive": false,
    "value": "SHA256:x"
  },
  "privateKey": {
    "sensitive": true,
    "value": "(sensitive)"
  },
  "publicKey": {
    "sensitive": false,
    "value": "ssh-ed25519 AAAA"
  }
}
`},
		{name: "unknown member", args: []string{"output", "nope"}, code: 1, stderr: `no member "nope" in state`},
		{name: "unknown member with attribute", args: []string{"output", "nope.x"}, code: 1, stderr: `no member "nope.x" (nor "nope") in state`},
		{name: "unknown attribute", args: []string{"output", "key.secret"}, code: 1, stderr: `member "key" has no output "secret" (it has fingerprint, privateKey, publicKey)`},
		{name: "escaped unknown member", args: []string{"output", "\x1b[1mx"}, code: 1, stderr: `no member "\x1b[1mx"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runMain(t, append(tc.args, "--state", path)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if tc.code == 0 && stdout != tc.stdout {
				t.Errorf("stdout:\n%q\nwant:\n%q", stdout, tc.stdout)
			}
			if tc.code != 0 && !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tc.stderr, stderr)
			}
			if strings.Contains(stderr, "\x1b") {
				t.Errorf("stderr holds an escape character: %q", stderr)
			}
			if tc.name != "raw keeps control characters off a terminal" && strings.Contains(stdout, "\x1b") {
				t.Errorf("stdout holds an escape character: %q", stdout)
			}
			if tc.code == 0 && !strings.Contains(strings.Join(tc.args, " "), "show-sensitive") && strings.Contains(stdout, "secret") {
				t.Errorf("a sensitive value was printed: %q", stdout)
			}
		})
	}
}

// TestOutputAllJSON: --json without arguments gives every member's
// outputs, sensitive ones masked and marked.
func TestOutputAllJSON(t *testing.T) {
	path := outputState(t)
	for _, show := range []bool{false, true} {
		args := []string{"output", "--json", "--state", path}
		if show {
			args = append(args, "--show-sensitive")
		}
		stdout, stderr, code := runMain(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var all map[string]map[string]outputValue
		if err := json.Unmarshal([]byte(stdout), &all); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		if len(all) != 4 {
			t.Errorf("%d members, want 4: %s", len(all), stdout)
		}
		pk := all["key"]["privateKey"]
		want := "(sensitive)"
		if show {
			want = "-----BEGIN KEY-----\nsecret\n"
		}
		if !pk.Sensitive || pk.Value != want {
			t.Errorf("show %v: key.privateKey = %+v, want sensitive %q", show, pk, want)
		}
		if env := all["grp.c"]["env"]; !env.Sensitive {
			t.Errorf("grp.c.env is partly sensitive, not marked: %+v", env)
		}
		if a := all["a"]["sha256"]; a.Sensitive || a.Value != "abc" {
			t.Errorf("a.sha256 = %+v", a)
		}
	}
}

// TestOutputRawOnATerminal: on a terminal --raw escapes what would act on
// it.
func TestOutputRawOnATerminal(t *testing.T) {
	path := outputState(t)
	var out, errb syncBuffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: true, Getenv: func(string) string { return "" }}
	if code := Main([]string{"output", "--raw", "--state", path, "\x1b[31mred.path"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := out.String(); got != `evil\x1b[2J` {
		t.Errorf("stdout %q", got)
	}
}

// TestOutputEmptyState: no state yet means no outputs, and a member asked
// for is unknown.
func TestOutputEmptyState(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.json")
	if stdout, stderr, code := runMain(t, "output", "--state", path); code != 0 || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := runMain(t, "output", "--state", path, "a"); code != 1 || !strings.Contains(stderr, `no member "a"`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("output wrote a state file")
	}
}
