package e2e

import (
	"strings"
	"testing"
)

// --replace replaces a member whose inputs did not change, and what uses
// its outputs follows; an unknown member is an error that changes nothing.
func TestReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.key = { type = providers.ssh-keypair.keypair; };
  members.pub = { type = providers.local.file; inputs = { name = "out/pub"; contents = members.key.outputs.publicKey; }; };
  members.other = { type = providers.local.file; inputs = { name = "out/other"; contents = "x"; }; };
}
`)
	mustRun(t, dir, 0, "apply", "--auto-approve")
	before := readFile(t, dir, "out/pub")
	stdout, _ := mustRun(t, dir, 0, "plan", "--replace", "key")
	for _, want := range []string{"key (ssh-keypair.keypair) must be replaced", "--replace", "Plan: 1 to add, 1 to change, 1 to destroy."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan --replace key does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "# other") {
		t.Errorf("plan --replace key changes an unrelated member:\n%s", stdout)
	}
	mustRun(t, dir, 0, "apply", "--auto-approve", "--replace", "key")
	if after := readFile(t, dir, "out/pub"); after == before {
		t.Errorf("after --replace key the public key is the same: %q", after)
	}
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")
	state := stateBytes(t, dir)
	_, stderr := mustRun(t, dir, 1, "apply", "--auto-approve", "--replace", "nosuch")
	if !strings.Contains(stderr, "--replace nosuch: no such member") {
		t.Errorf("--replace of an unknown member: %s", stderr)
	}
	if string(stateBytes(t, dir)) != string(state) {
		t.Error("a refused --replace changed the state")
	}
	if _, stderr := mustRun(t, dir, 2, "destroy", "--auto-approve", "--replace", "key"); !strings.Contains(stderr, "--replace is for plan and apply") {
		t.Errorf("destroy --replace: %s", stderr)
	}
}
