package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A derivation that a member's inputs refer to is built just before that
// member is applied, and never while planning.
func TestDerivationsAreBuiltAtApplyNotPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A name unique to this run, so the output is not in the store yet.
	name := "landscaper-e2e-" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }:
let
  built = builtins.derivation {
    name = "`+name+`";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo built-by-nix > $out" ];
  };
in {
  members.path = { type = providers.local.file; inputs = { name = "out/path"; contents = "${built}"; }; };
  members.read = { type = providers.local.exec; inputs = { executable = "cat"; args = [ "${built}" ]; }; };
}
`)
	out, _ := mustRun(t, dir, 0, "plan")
	var storePath string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "/nix/store/"); i >= 0 && strings.Contains(line, name) {
			storePath = strings.Trim(line[i:], `" `)
			break
		}
	}
	if storePath == "" {
		t.Fatalf("the plan does not show the store path of %s:\n%s", name, out)
	}
	if _, err := os.Stat(storePath); err == nil {
		t.Fatalf("%s exists after plan: plan built it", storePath)
	}
	mustRun(t, dir, 0, "apply", "--auto-approve")
	if b, err := os.ReadFile(storePath); err != nil || string(b) != "built-by-nix\n" {
		t.Fatalf("after apply %s holds %q (%v)", storePath, b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out", "path")); string(b) != storePath {
		t.Errorf("out/path holds %q, want %q", b, storePath)
	}
	show, _ := mustRun(t, dir, 0, "state", "show", "read")
	if !strings.Contains(show, `built-by-nix\n`) {
		t.Errorf("the command did not read the built output:\n%s", show)
	}
	_ = exec.Command("nix-store", "--delete", storePath).Run()
}
