package e2e

import (
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// blockedDeployment has a command and a file whose name is computed from
// the command's output (replaceStrings: Nix computes with it, so the file
// is evaluated again once it is known); extra is more of the file's
// inputs.
func blockedDeployment(arg, extra string) string {
	return `{ members, providers, ... }: let cmd = members.cmd.outputs; in {
  members.cmd = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "printf %s \"$1\"" "sh" "` + arg + `" ]; }; };
  members.k = { type = providers.local.file; inputs = { contents = "x"; name = "out/k-${builtins.replaceStrings [ "a" ] [ "b" ] cmd.stdout}"; ` + extra + ` }; };
}
`
}

// TestBlockedMemberPlanned: a member whose inputs compute with an output
// not known yet is planned by its provider in the parts that do not: an
// input its type does not have fails the plan (before, only the apply
// failed, after the command had run), and an unknown input that forces a
// replacement shows the replacement in the plan (before, the plan showed
// an update and the apply refused the replacement).
func TestBlockedMemberPlanned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	writeFile(t, dir, "landscaper.nix", blockedDeployment("aaa", `env = { };`))
	for _, cmd := range [][]string{{"plan"}, {"apply", "--auto-approve"}} {
		_, stderr, code := run(t, dir, cmd...)
		if code != 1 || !strings.Contains(stderr, `member k (local.file): inputs.env: unknown input: "env" is not an input of this resource type`) {
			t.Errorf("%s with an input local.file does not have: exit %d\n%s", cmd[0], code, stderr)
		}
	}
	if exists(dir, ".landscaper/state.json") || exists(dir, "out") {
		t.Fatalf("a refused plan changed something")
	}

	writeFile(t, dir, "landscaper.nix", blockedDeployment("aaa", ""))
	out, _ := mustRun(t, dir, 0, "plan")
	for _, want := range []string{
		"k (local.file) will be created; its inputs are computed from outputs known after apply (cmd.stdout)",
		`+ contents = "x"`, "+ name     = (known after apply)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the first plan does not show %q:\n%s", want, out)
		}
	}
	mustRun(t, dir, 0, "apply", "--auto-approve")
	wantFile(t, dir, "out/k-bbb", "x")

	// The name changes: the plan shows the replacement, apply does it.
	writeFile(t, dir, "landscaper.nix", blockedDeployment("abc", ""))
	out, _ = mustRun(t, dir, 0, "plan")
	for _, want := range []string{
		"k (local.file) must be replaced; its inputs are computed from outputs known after apply (cmd.stdout)",
		`~ name     = "out/k-bbb" -> (known after apply) # forces replacement`,
		"Plan: 1 to add, 1 to change, 1 to destroy.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan does not show %q:\n%s", want, out)
		}
	}
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve")
	if !strings.Contains(out, "Resources: 0 added, 1 changed, 1 replaced, 0 destroyed") {
		t.Errorf("apply did not do what the plan showed:\n%s", out)
	}
	wantFile(t, dir, "out/k-bbc", "x")
	wantNoFile(t, dir, "out/k-bbb")

	// The command changes, its output does not: the replacement the plan
	// showed (the name was unknown) is an update of the contents, said.
	writeFile(t, dir, "landscaper.nix", strings.Replace(blockedDeployment("abc", ""), `contents = "x"`, `contents = "y"`, 1))
	writeFile(t, dir, "landscaper.nix", strings.Replace(readFile(t, dir, "landscaper.nix"), `"sh" "abc"`, `"sh2" "abc"`, 1))
	out, _ = mustRun(t, dir, 0, "plan")
	if !strings.Contains(out, "k (local.file) must be replaced") {
		t.Errorf("the plan does not replace k:\n%s", out)
	}
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve")
	for _, want := range []string{
		"k: updated in place: planned as replace while its inputs were not known; with their values known nothing forces a replacement",
		"Resources: 0 added, 2 changed, 0 replaced, 0 destroyed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply does not say %q:\n%s", want, out)
		}
	}
	wantFile(t, dir, "out/k-bbc", "y")
	out, _ = mustRun(t, dir, 0, "plan", "--detailed-exitcode")
	if !strings.Contains(out, "No changes") {
		t.Errorf("the plan after apply:\n%s", out)
	}
}

// TestComputesBesidePassingASecret: a member that passes a private key on
// in one input and computes its file name from a command's output in
// another is planned and applied (it was refused as computing with the
// sensitive key); the key reaches no plan, saved plan or JSON.
func TestComputesBesidePassingASecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	deployment := func(arg string) string {
		return `{ members, providers, ... }: {
  members.key = { type = providers.ssh-keypair.keypair; };
  members.cmd = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "-n" "` + arg + `" ]; }; };
  members.s = { type = providers.local.file; inputs = { name = "out/s-${builtins.hashString "sha256" members.cmd.outputs.stdout}"; mode = "0600"; contents = members.key.outputs.privateKey; }; };
}
`
	}
	writeFile(t, dir, "landscaper.nix", deployment("a"))
	out, _ := mustRun(t, dir, 0, "plan")
	if !strings.Contains(out, "s (local.file) will be created; its inputs are computed from outputs known after apply (cmd.stdout)") {
		t.Errorf("the first plan:\n%s", out)
	}
	mustRun(t, dir, 0, "apply", "--auto-approve")
	private := readFile(t, dir, "out/s-"+sha256Hex("a"))
	if !strings.Contains(private, "PRIVATE KEY") {
		t.Fatalf("out/s-... does not hold the private key:\n%s", private)
	}

	writeFile(t, dir, "landscaper.nix", deployment("b"))
	planFile := dir + "/p.plan"
	out, _ = mustRun(t, dir, 0, "plan", "--out", planFile)
	for _, want := range []string{
		"s (local.file) must be replaced; its inputs are computed from outputs known after apply (cmd.stdout)",
		"# forces replacement",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "changed outside") {
		t.Errorf("the plan says the key changed outside:\n%s", out)
	}
	js, _ := mustRun(t, dir, 0, "plan", "--json")
	for _, line := range testbin.SecretLines(private) {
		for what, text := range map[string]string{"plan": out, "saved plan": readFile(t, dir, "p.plan"), "plan --json": js} {
			if strings.Contains(text, line) {
				t.Fatalf("the %s holds the private key", what)
			}
		}
	}
	mustRun(t, dir, 0, "apply", planFile)
	wantFile(t, dir, "out/s-"+sha256Hex("b"), private)
	wantNoFile(t, dir, "out/s-"+sha256Hex("a"))
	out, _ = mustRun(t, dir, 0, "plan", "--detailed-exitcode")
	if !strings.Contains(out, "No changes") {
		t.Errorf("the plan after apply:\n%s", out)
	}
}
