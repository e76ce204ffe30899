package e2e

import (
	"strings"
	"testing"
)

// TestMemberSetFromOutput: members whose very names come from an output
// appear once the output is known, within the same apply.
func TestMemberSetFromOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.gen = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "a b c" ]; }; };
  members.files.members = builtins.listToAttrs (map
    (n: { name = n; value = { type = providers.local.file; inputs = { name = "out/${n}"; contents = n; }; }; })
    (builtins.filter builtins.isString (builtins.split " " (builtins.replaceStrings ["\n"] [""] members.gen.outputs.stdout))));
}
`)
	out, _ := mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs := events(t, out)
	for _, n := range []string{"a", "b", "c"} {
		wantFile(t, dir, "out/"+n, n)
		requireOrder(t, evs, "done", "gen", "started", "files."+n)
	}
	if got := stateMembers(t, dir); !sameStrings(got, []string{"files.a", "files.b", "files.c", "gen"}) {
		t.Errorf("state list after one apply = %v, want gen and files.a, files.b, files.c", got)
	}
	if t.Failed() {
		t.Logf("apply output:\n%s", out)
	}
	out, _, code := run(t, dir, "plan", "--detailed-exitcode", "--json")
	if code != 0 {
		t.Errorf("second plan: exit %d, want 0\n%s", code, out)
	}

	// The set follows the output: b goes, d comes.
	writeFile(t, dir, "landscaper.nix", strings.Replace(readFile(t, dir, "landscaper.nix"), `"a b c"`, `"a c d"`, 1))
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	for _, n := range []string{"a", "c", "d"} {
		wantFile(t, dir, "out/"+n, n)
	}
	wantNoFile(t, dir, "out/b")
	if got := stateMembers(t, dir); !sameStrings(got, []string{"files.a", "files.c", "files.d", "gen"}) {
		t.Errorf("state list after changing the output = %v, want gen and files.a, files.c, files.d", got)
	}
	if t.Failed() {
		t.Logf("second apply output:\n%s", out)
	}
}

// TestBranchOnOutputEquality: a member chosen by comparing an output with a
// constant must be the branch the real output selects, after one apply,
// and the other branch's file must not be left behind.
func TestBranchOnOutputEquality(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		deployment string
		// member is the member the real output selects.
		member string
	}{
		{
			// Same member name, the branch picks its inputs.
			name: "same-name",
			deployment: `{ members, providers, ... }: {
  members.sel = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "yes" ]; }; };
  members.c.members.x = if members.sel.outputs.stdout == "yes\n"
    then { type = providers.local.file; inputs = { name = "out/A"; contents = "A"; }; }
    else { type = providers.local.file; inputs = { name = "out/B"; contents = "B"; }; };
}
`,
			member: "c.x",
		},
		{
			// The branch picks which members exist.
			name: "member-set",
			deployment: `{ members, providers, ... }: {
  members.sel = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "yes" ]; }; };
  members.c.members = if members.sel.outputs.stdout == "yes\n"
    then { A = { type = providers.local.file; inputs = { name = "out/A"; contents = "A"; }; }; }
    else { B = { type = providers.local.file; inputs = { name = "out/B"; contents = "B"; }; }; };
}
`,
			member: "c.A",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "landscaper.nix", c.deployment)
			out, _ := mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
			evs := events(t, out)
			for _, ev := range evs {
				if ev.Kind == "log" && strings.Contains(ev.Message, "out/B") {
					t.Logf("the wrong branch's file was written during the apply: %s: %s", ev.Member, ev.Message)
				}
			}
			wantFile(t, dir, "out/A", "A")
			wantNoFile(t, dir, "out/B")
			if got := stateMembers(t, dir); !sameStrings(got, []string{c.member, "sel"}) {
				t.Errorf("state list = %v, want %s and sel", got, c.member)
			}
			if t.Failed() {
				t.Logf("apply output:\n%s", out)
			}
			out, _, code := run(t, dir, "plan", "--detailed-exitcode")
			if code != 0 {
				t.Errorf("plan after apply: exit %d, want 0\n%s", code, out)
			}
		})
	}
}
