package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlakeDeployments: one flake holds several deployments, modules that
// share a module, as landscaperDeployments.<name>; --flake .#NAME plans and
// applies each with a state of its own, and an unknown name is refused,
// naming those there are.
func TestFlakeDeployments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "flake.nix", `{
  outputs = { self }: {
    landscaperDeployments.prod = { imports = [ ./site.nix ]; site.stage = "prod"; };
    landscaperDeployments.staging = { imports = [ ./site.nix ]; site.stage = "staging"; };
  };
}
`)
	writeFile(t, dir, "site.nix", `{ lib, config, providers, ... }: {
  options.site.stage = lib.mkOption { type = lib.types.enum [ "prod" "staging" ]; };
  config.members.page = {
    type = providers.local.file;
    inputs = { name = "out/${config.site.stage}.txt"; contents = "this is ${config.site.stage}\n"; };
  };
}
`)
	gitInit(t, dir, "flake.nix", "site.nix")

	for _, name := range []string{"prod", "staging"} {
		mustRun(t, dir, 0, "apply", "--auto-approve", "--flake", ".#"+name)
		wantFile(t, dir, "out/"+name+".txt", "this is "+name+"\n")
		if _, err := os.Stat(filepath.Join(dir, ".landscaper", "deployments", name, "state.json")); err != nil {
			t.Errorf("no state of its own for %s: %v", name, err)
		}
	}
	for _, name := range []string{"prod", "landscaperDeployments.staging"} {
		if stdout, stderr, code := run(t, dir, "plan", "--detailed-exitcode", "--flake", ".#"+name); code != 0 {
			t.Errorf("plan --flake .#%s: exit %d, want 0 (no changes)\nstdout:\n%s\nstderr:\n%s", name, code, stdout, stderr)
		}
	}
	_, stderr, code := run(t, dir, "plan", "--flake", ".#test")
	if code != 1 || !strings.Contains(stderr, "has no landscaperDeployments.test (it has prod, staging)") {
		t.Errorf("plan --flake .#test: exit %d, stderr:\n%s", code, stderr)
	}
	mustRun(t, dir, 0, "destroy", "--auto-approve", "--flake", ".#staging")
	wantNoFile(t, dir, "out/staging.txt")
	wantFile(t, dir, "out/prod.txt", "this is prod\n")
}
