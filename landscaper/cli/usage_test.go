package cli

import (
	"strings"
	"testing"
)

// runMain runs the command line in-process with stdout and stderr
// captured, no terminal and an empty environment.
func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb syncBuffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(args, env)
	return out.String(), errb.String(), code
}

// TestHelp: --help and -h work for every command and subcommand, print the
// usage (with the positional arguments) on stdout and exit 0.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "Usage: landscaper [--chdir DIR] <command>"},
		{[]string{"-h"}, "Usage: landscaper [--chdir DIR] <command>"},
		{[]string{"help"}, "Usage: landscaper [--chdir DIR] <command>"},
		{[]string{"plan", "--help"}, "Usage: landscaper plan [flags]\n"},
		{[]string{"apply", "-h"}, "Usage: landscaper apply [flags] [FILE]\n"},
		{[]string{"destroy", "--help"}, "Usage: landscaper destroy [flags]\n"},
		{[]string{"validate", "--help"}, "Usage: landscaper validate [flags]\n"},
		{[]string{"graph", "-h"}, "Usage: landscaper graph [flags]\n"},
		{[]string{"output", "--help"}, "Usage: landscaper output [flags] [MEMBER[.ATTR]]\n"},
		{[]string{"state", "--help"}, "Usage: landscaper state <subcommand>"},
		{[]string{"state", "-h"}, "  mv OLD NEW "},
		{[]string{"state", "list", "--help"}, "Usage: landscaper state list [flags]\n"},
		{[]string{"state", "show", "--help"}, "Usage: landscaper state show [flags] MEMBER\n"},
		{[]string{"state", "show", "x", "-h"}, "Usage: landscaper state show [flags] MEMBER\n"},
		{[]string{"state", "mv", "--help"}, "Usage: landscaper state mv [flags] OLD NEW\n"},
		{[]string{"state", "rm", "--help"}, "Usage: landscaper state rm [flags] MEMBER...\n"},
		{[]string{"state", "push", "--help"}, "Usage: landscaper state push [flags] PLACE\n"},
		{[]string{"state", "pull", "-h"}, "Usage: landscaper state pull [flags] PLACE\n"},
		{[]string{"providers", "--help"}, "Usage: landscaper providers [flags]\n"},
		{[]string{"provider", "--help"}, "Usage: landscaper provider <subcommand>"},
		{[]string{"provider", "schema", "--help"}, "Usage: landscaper provider schema [flags] NAME|PATH\n"},
		{[]string{"provider", "call", "-h"}, "Usage: landscaper provider call [flags] NAME|PATH validate|plan|create|update|delete|read\n"},
		{[]string{"serve", "--help"}, "Usage: landscaper serve [flags]\n"},
		{[]string{"version", "--help"}, "Usage: landscaper version [flags]\n"},
		{[]string{"help", "state", "show"}, "Usage: landscaper state show [flags] MEMBER\n"},
		{[]string{"help", "output"}, "Usage: landscaper output [flags] [MEMBER[.ATTR]]\n"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runMain(t, tc.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stdout, tc.want) {
				t.Errorf("stdout does not hold %q:\n%s", tc.want, stdout)
			}
			if stderr != "" {
				t.Errorf("stderr is not empty:\n%s", stderr)
			}
		})
	}
}

// TestFlagHelpDescribesTheCommand: a flag shared by commands is described
// for each.
func TestFlagHelpDescribesTheCommand(t *testing.T) {
	tests := []struct {
		command   string
		want, not []string
	}{
		{"apply", []string{"apply without asking", "apply only this member"}, []string{"destroy"}},
		{"destroy", []string{"destroy without asking", "destroy only this member and the members that depend on it", "to delete one member"}, []string{"apply without asking", "-replace", "-show-trace"}},
		{"plan", []string{"-detailed-exitcode", "plan only this member", "-show-trace"}, []string{"-auto-approve"}},
		{"validate", []string{"-show-trace", "-json"}, []string{"-lock-timeout", "-target"}},
		{"output", []string{"-raw", "-show-sensitive", "-json"}, []string{"-lock-timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.command, func(t *testing.T) {
			stdout, _, _ := runMain(t, tc.command, "--help")
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("%s --help does not say %q:\n%s", tc.command, w, stdout)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(stdout, n) {
					t.Errorf("%s --help says %q:\n%s", tc.command, n, stdout)
				}
			}
		})
	}
}

// TestNoColorEverywhere: every command takes --no-color.
func TestNoColorEverywhere(t *testing.T) {
	for _, cmd := range [][]string{
		{"plan"}, {"apply"}, {"destroy"}, {"validate"}, {"graph"}, {"output"},
		{"state", "list"}, {"state", "show"}, {"state", "mv"}, {"state", "rm"}, {"state", "push"}, {"state", "pull"},
		{"providers"}, {"provider", "schema"}, {"provider", "call"}, {"serve"}, {"version"},
	} {
		args := append(append([]string{}, cmd...), "--no-color", "--help")
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			if _, stderr, code := runMain(t, args...); code != 0 {
				t.Errorf("exit %d, want 0:\n%s", code, stderr)
			}
		})
	}
}

// TestUsageErrors: extra or missing positional arguments, unknown
// commands and flags exit 2 with a message naming what is wrong, and the
// usage on stderr.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "Usage: landscaper"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\n"},
		{[]string{"plna"}, `unknown command "plna"; did you mean "plan"?`},
		{[]string{"aply"}, `unknown command "aply"; did you mean "apply"?`},
		{[]string{"destory"}, `unknown command "destory"; did you mean "destroy"?`},
		{[]string{"outputs"}, `unknown command "outputs"; did you mean "output"?`},
		{[]string{"--nope", "plan"}, "flag provided but not defined: -nope"},
		{[]string{"plan", "extra"}, `plan takes no arguments, got "extra"`},
		{[]string{"apply", "--auto-approve", "one", "two"}, `apply takes at most 1 argument ([FILE]), got the extra "two"`},
		{[]string{"destroy", "x"}, `destroy takes no arguments, got "x"`},
		{[]string{"destroy", "--auto-approve", "--replace", "k"}, "--replace is for plan and apply"},
		{[]string{"validate", "x"}, `validate takes no arguments, got "x"`},
		{[]string{"graph", "x"}, `graph takes no arguments, got "x"`},
		{[]string{"output", "a", "b"}, `output takes at most 1 argument ([MEMBER[.ATTR]]), got the extra "b"`},
		{[]string{"output", "--raw"}, "output --raw needs MEMBER.ATTR"},
		{[]string{"output", "--raw", "--json", "a.b"}, "--raw and --json exclude each other"},
		{[]string{"state"}, "state needs a subcommand"},
		{[]string{"state", "frob"}, `unknown state subcommand "frob"` + "\n"},
		{[]string{"state", "ls"}, `unknown state subcommand "ls"; did you mean "list"?`},
		{[]string{"state", "lsit"}, `unknown state subcommand "lsit"; did you mean "list"?`},
		{[]string{"provider", "shcema", "local"}, `unknown provider subcommand "shcema"; did you mean "schema"?`},
		{[]string{"state", "list", "x"}, `state list takes no arguments, got "x"`},
		{[]string{"state", "show"}, "state show needs MEMBER"},
		{[]string{"state", "show", "a", "b", "c"}, `got the extra "b" "c"`},
		{[]string{"state", "mv", "a"}, "state mv needs OLD NEW"},
		{[]string{"state", "mv", "a", "b", "c"}, `got the extra "c"`},
		{[]string{"state", "rm"}, "state rm needs MEMBER..."},
		{[]string{"state", "push", "a", "b"}, `got the extra "b"`},
		{[]string{"state", "pull"}, "state pull needs PLACE"},
		{[]string{"state", "show", "--json", "x"}, "flag provided but not defined: -json"},
		{[]string{"providers", "x"}, `providers takes no arguments, got "x"`},
		{[]string{"provider"}, "provider needs a subcommand"},
		{[]string{"provider", "schema"}, "provider schema needs NAME|PATH"},
		{[]string{"provider", "schema", "a", "b"}, `got the extra "b"`},
		{[]string{"provider", "call", "local", "plan", "x"}, `got the extra "x"`},
		{[]string{"provider", "call", "local", "plan"}, "provider call needs --type"},
		{[]string{"serve", "x"}, `serve takes no arguments, got "x"`},
		{[]string{"version", "x"}, `version takes no arguments, got "x"`},
		{[]string{"plan", "--nope"}, "flag provided but not defined: -nope\n"},
		{[]string{"--nocolor", "plan"}, `flag provided but not defined: -nocolor; did you mean "--no-color"?`},
		{[]string{"plan", "--destory"}, `flag provided but not defined: -destory; did you mean "--destroy"?`},
		{[]string{"apply", "--auto-aprove"}, `flag provided but not defined: -auto-aprove; did you mean "--auto-approve"?`},
		{[]string{"state", "mv", "--lock-timeot", "1s", "a", "b"}, `did you mean "--lock-timeout"?`},
		{[]string{"plan", "-chdir=/tmp"}, "--chdir is a global option and comes before the command: landscaper --chdir DIR plan"},
		{[]string{"state", "list", "--chdir", "/tmp"}, "comes before the command: landscaper --chdir DIR state list"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runMain(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout is not empty:\n%s", stdout)
			}
		})
	}
}

// TestVersion: the version command and the global --version flag.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}, {"version", "--no-color"}} {
		stdout, stderr, code := runMain(t, args...)
		if code != 0 || stdout != "landscaper "+Version+"\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args       []string
		positional []string
		json       bool
	}{
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true},
		{[]string{"--json", "a"}, []string{"a"}, true},
		{[]string{"--", "--json", "a"}, []string{"--json", "a"}, false},
		{[]string{"a", "--", "-b", "--json"}, []string{"a", "-b", "--json"}, false},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := spec{name: "x"}.flags()
			j := fs.Bool("json", false, "")
			got, err := parseFlags(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.positional, "|") || *j != tc.json {
				t.Errorf("positional %q json %v, want %q %v", got, *j, tc.positional, tc.json)
			}
		})
	}
}

// TestNoColorGlobal: on a terminal, show colours a saved plan unless
// --no-color is given, before the command or after it.
func TestNoColorGlobal(t *testing.T) {
	dir := deploymentDir(t, `{ members, providers, ... }: {
  members.f = { type = providers.local.file; inputs = { name = "out/f"; contents = "x"; }; };
}
`)
	planFile := dir + "/p.plan"
	if _, stderr, code := landscaper(t, dir, nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan --out: exit %d\n%s", code, stderr)
	}
	for _, tc := range []struct {
		args    []string
		colored bool
	}{
		{[]string{"show", planFile}, true},
		{[]string{"--no-color", "show", planFile}, false},
		{[]string{"show", "--no-color", planFile}, false},
	} {
		t.Run(strings.Join(tc.args[:len(tc.args)-1], " "), func(t *testing.T) {
			var out, errb syncBuffer
			env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, IsTerminal: true, Getenv: func(string) string { return "" }}
			if code := Main(tc.args, env); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if got := strings.Contains(out.String(), "\x1b["); got != tc.colored || !strings.Contains(out.String(), "will be created") {
				t.Errorf("coloured %v, want %v:\n%q", got, tc.colored, out.String())
			}
		})
	}
}

// TestCommandNamesDispatch: every name suggested for a typo is a command
// run knows.
func TestCommandNamesDispatch(t *testing.T) {
	for _, name := range commandNames() {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runMain(t, name, "--help")
			if code != 0 || strings.Contains(stderr, "unknown command") {
				t.Errorf("%s --help: exit %d\n%s", name, code, stderr)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"plan", "plan", 0},
		{"plna", "plan", 1},
		{"pln", "plan", 1},
		{"plann", "plan", 1},
		{"plen", "plan", 1},
		{"aply", "apply", 1},
		{"", "abc", 3},
		{"destory", "destroy", 1},
		{"frobnicate", "plan", 9},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
