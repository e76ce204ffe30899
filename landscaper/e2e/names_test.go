package e2e

import (
	"strings"
	"testing"
)

// Member names with control characters (an ANSI escape, a carriage return)
// and a bidirectional override are shown escaped by plan, apply's progress,
// the summary and state list: nothing a deployment names a member can act
// on the terminal.
func TestMemberNamesCannotControlTheTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Nix strings have no \u escapes: the characters are written as they
	// are into the file.
	writeFile(t, dir, "landscaper.nix", "{ members, providers, ... }: {\n"+
		"  members.\"\x1b[2J\x1b[31mred\" = { type = providers.local.file; inputs = { name = \"out/red\"; contents = \"x\"; }; };\n"+
		"  members.\"over\\rwrite\" = { type = providers.local.file; inputs = { name = \"out/cr\"; contents = \"x\"; }; };\n"+
		"  members.\"a\u202eb\" = { type = providers.local.exec; inputs = { executable = \"sh\"; args = [ \"-c\" \"printf 'bell\\\\007 and \\\\033[1mbold\\\\n' >&2; exit 1\" ]; }; };\n"+
		"}\n")
	var outputs []string
	for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}, {"state", "list"}} {
		want := 0
		if args[0] == "apply" {
			want = 1 // the exec member fails, on purpose
		}
		stdout, stderr := mustRun(t, dir, want, args...)
		outputs = append(outputs, stdout, stderr)
	}
	all := strings.Join(outputs, "\n")
	// The UI's own colours are off (stdout is not a terminal), so any
	// escape character or carriage return came from the deployment.
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\a"} {
		if strings.Contains(all, bad) {
			t.Errorf("the output holds %q raw:\n%s", bad, all)
		}
	}
	for _, shown := range []string{`"\x1b[2J\x1b[31mred"`, `"over\rwrite"`, `"a\u202eb"`, `bell\a and \x1b[1mbold`} {
		if !strings.Contains(all, shown) {
			t.Errorf("the output does not show %s escaped:\n%s", shown, all)
		}
	}
}
