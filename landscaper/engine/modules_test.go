package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// localProvider builds the local provider into a temporary directory.
func localProvider(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "landscaper-provider-local")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./providers/local/cmd/landscaper-provider-local")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the local provider: %v\n%s", err, out)
	}
	return bin
}

// openLocal opens an engine on dir's landscaper.nix and state file, with
// the local provider at bin; it is closed when the test ends.
func openLocal(t *testing.T, dir, bin string) *Engine {
	t.Helper()
	e, err := Open(t.Context(), Options{
		Source:   eval.Source{File: filepath.Join(dir, "landscaper.nix")},
		Backend:  state.NewFile(filepath.Join(dir, ".landscaper", "state.json")),
		Builtins: map[string]string{"local": bin},
		Dir:      dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// The module deployment of TestModuleDeploymentPlanAndApply: three files.
// An exec member's output (known only after apply) reaches files through
// options declared in another module, passed through (label) and computed
// with (digest); members are defined in several modules and merge.
var moduleDeployment = map[string]string{
	"landscaper.nix": `{ lib, config, members, providers, ... }: {
  imports = [ ./naming.nix ./site.nix ];
  options.site.greeting = lib.mkOption { type = lib.types.str; default = "hello"; };
  config.site.greeting = lib.mkForce "bonjour";
  config.members.id = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "web-42" ]; }; };
}`,
	"naming.nix": `{ lib, members, ... }: {
  options.site.label = lib.mkOption { type = lib.types.str; };
  options.site.digest = lib.mkOption { type = lib.types.str; };
  config.site.label = "label ${members.id.outputs.stdout}";
  config.site.digest = builtins.hashString "sha256" members.id.outputs.stdout;
}`,
	"site.nix": `{ lib, config, providers, ... }:
let params = import ./params.nix; in
{
  members.files.members.label = { type = providers.local.file; inputs = { name = "out/label.txt"; contents = "${config.site.greeting} ${config.site.label}\n"; }; };
  members.files.members.digest = lib.mkIf params.withDigest { type = providers.local.file; inputs = { name = "out/digest.txt"; contents = config.site.digest; }; };
  members.id.inputs.env.FROM = "site.nix";
}`,
	"params.nix": `{ withDigest = true; }`,
}

// TestModuleDeploymentPlanAndApply plans and applies a module deployment
// whose members, defined across modules, refer to each other's outputs
// through options; then plans it again (nothing to do), and removes a
// member by turning its mkIf off.
func TestModuleDeploymentPlanAndApply(t *testing.T) {
	ctx := t.Context()
	bin := localProvider(t)
	dir := t.TempDir()
	for name, text := range moduleDeployment {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	open := func(t *testing.T) *Engine { return openLocal(t, dir, bin) }
	actions := func(p *Plan) map[string]*Change {
		got := map[string]*Change{}
		for _, c := range p.Changes {
			got[c.Member] = c
		}
		return got
	}

	e := open(t)
	plan, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes := actions(plan)
	for _, m := range []string{"id", "files.label", "files.digest"} {
		if c := changes[m]; c == nil || c.Action != resource.ActionCreate {
			t.Fatalf("plan for %s: %+v, want create (plan: %+v)", m, c, plan.Changes)
		}
	}
	if len(changes) != 3 {
		t.Errorf("plan has %d members, want 3", len(changes))
	}
	// The member's inputs from two modules merged.
	if !strings.Contains(string(changes["id"].Inputs), `"FROM":"site.nix"`) || !strings.Contains(string(changes["id"].Inputs), `"web-42"`) {
		t.Errorf("id's inputs did not merge: %s", changes["id"].Inputs)
	}
	// Passed through an option: unknown until apply, and depends on id.
	if label := changes["files.label"]; !slices.Contains(label.Deps, "id") || !slices.ContainsFunc(label.Unknown, func(p resource.Path) bool { return p.String() == "contents" }) || label.Deferred {
		t.Errorf("files.label: deps %v unknown %v deferred %v; want it to depend on id, contents known after apply", label.Deps, label.Unknown, label.Deferred)
	}
	// Computed with: waits for the output.
	if digest := changes["files.digest"]; !digest.Deferred || !slices.Contains(digest.WaitsFor, "id.stdout") {
		t.Errorf("files.digest: deferred %v waits for %v; want it to wait for id.stdout", digest.Deferred, digest.WaitsFor)
	}
	summary, err := e.Apply(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !summary.OK() || len(summary.Created) != 3 {
		t.Fatalf("apply: %+v", summary)
	}
	e.Close()

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, "out", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("label.txt"); got != "bonjour label web-42\n" {
		t.Errorf("label.txt = %q", got)
	}
	sum := sha256.Sum256([]byte("web-42"))
	if got := read("digest.txt"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("digest.txt = %q, want the sha256 of web-42", got)
	}

	t.Run("nothing left to do", func(t *testing.T) {
		plan, err := open(t).Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range plan.Changes {
			if c.Action != resource.ActionNoop {
				t.Errorf("%s: %v, want no-op", c.Member, c.Action)
			}
		}
	})

	t.Run("a member switched off by mkIf is deleted", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "params.nix"), []byte(`{ withDigest = false; }`), 0o644); err != nil {
			t.Fatal(err)
		}
		e := open(t)
		plan, err := e.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		changes := actions(plan)
		if c := changes["files.digest"]; c == nil || c.Action != resource.ActionDelete {
			t.Fatalf("files.digest: %+v, want delete", c)
		}
		if c := changes["files.label"]; c == nil || c.Action != resource.ActionNoop {
			t.Errorf("files.label: %+v, want no-op", c)
		}
		summary, err := e.Apply(context.WithoutCancel(ctx), plan)
		if err != nil || !summary.OK() || !slices.Equal(summary.Deleted, []string{"files.digest"}) {
			t.Fatalf("apply: %+v %v", summary, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "digest.txt")); !os.IsNotExist(err) {
			t.Errorf("digest.txt is still there: %v", err)
		}
	})
}
