package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// nixpkgsLib returns the directory of nixpkgs' lib, the reference for the
// module system: $LANDSCAPER_NIXPKGS_LIB, or the snapshot the project keeps
// beside the repository (../shared/nixpkgs-lib/*.tar.gz, or
// /work/shared/nixpkgs-lib), unpacked.
func nixpkgsLib(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("LANDSCAPER_NIXPKGS_LIB"); dir != "" {
		return dir
	}
	// Beside the repository, or where the team's machines keep it.
	var archives []string
	for _, base := range []string{filepath.Join("..", "..", "..", "shared"), "/work/shared"} {
		if archives, _ = filepath.Glob(filepath.Join(base, "nixpkgs-lib", "nixpkgs-lib-*.tar.gz")); len(archives) > 0 {
			break
		}
	}
	if len(archives) == 0 {
		t.Fatal("no nixpkgs lib to compare with: set LANDSCAPER_NIXPKGS_LIB to a nixpkgs lib directory, or put the snapshot in ../shared/nixpkgs-lib/")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", archives[0], "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", archives[0], err, out)
	}
	return filepath.Join(dir, "nixpkgs-lib", "lib")
}

// evalModulesWith evaluates the modules of testdata/modules/CASE with the
// lib given as a Nix expression: config as JSON, and nix's stderr.
func evalModulesWith(ctx context.Context, t *testing.T, lib, caseDir string) ([]byte, string, error) {
	t.Helper()
	abs, err := filepath.Abs(caseDir)
	if err != nil {
		t.Fatal(err)
	}
	expr := "let lib = " + lib + "; in (lib.evalModules { modules = import " + abs + "; }).config"
	cmd := exec.CommandContext(ctx, "nix-instantiate", "--eval", "--strict", "--json", "--expr", expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

func ourLib(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("lib")
	if err != nil {
		t.Fatal(err)
	}
	return "import " + abs + " { }"
}

// TestModulesAgreeWithNixpkgs: every module set of testdata/modules/agree
// gives the same config with Landscaper's module system as with nixpkgs'
// lib.evalModules.
func TestModulesAgreeWithNixpkgs(t *testing.T) {
	reference := "import " + nixpkgsLib(t)
	cases, err := filepath.Glob(filepath.Join("testdata", "modules", "agree", "*"))
	if err != nil || len(cases) < 5 {
		t.Fatalf("the corpus is missing: %v %v", cases, err)
	}
	for _, c := range cases {
		t.Run(filepath.Base(c), func(t *testing.T) {
			t.Parallel()
			want, stderr, err := evalModulesWith(t.Context(), t, reference, c)
			if err != nil {
				t.Fatalf("nixpkgs' lib: %v\n%s", err, stderr)
			}
			got, stderr, err := evalModulesWith(t.Context(), t, ourLib(t), c)
			if err != nil {
				t.Fatalf("Landscaper's lib: %v\n%s", err, stderr)
			}
			var w, g map[string]any
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if len(w) == 0 {
				t.Fatalf("the case defines nothing: %s", want)
			}
			if !reflect.DeepEqual(w, g) {
				t.Errorf("config differs\nnixpkgs:    %s\nlandscaper: %s", want, got)
			}
		})
	}
}

// TestModuleErrors: what nixpkgs' lib refuses, Landscaper's refuses too,
// naming the option and the files concerned.
func TestModuleErrors(t *testing.T) {
	reference := "import " + nixpkgsLib(t)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"conflict", []string{"option `name` has conflicting definitions", `"alpha" in `, "conflict/a.nix", `"beta" in `, "conflict/b.nix", "mkForce or mkDefault"}},
		{"wrongtype", []string{"option `count`: the definition in ", "wrongtype/value.nix is not of type `signed integer`: \"three\""}},
		{"undeclared", []string{"option `nmae` does not exist (defined in ", "undeclared/typo.nix); did you mean `name`?"}},
		{"missing", []string{"option `name` has no value: it is declared in ", "errors/options.nix without a default"}},
		{"subundeclared", []string{"option `hosts.web.adress` does not exist (defined in ", "subundeclared/host.nix); did you mean `address`?"}},
		{"condition", []string{"option `count`: the condition of mkIf in ", "condition/cond.nix is not a boolean but string"}},
		{"nullmix", []string{"option `maybe` is defined both null (in ", "nullmix/null.nix) and not null (in ", "nullmix/set.nix)"}},
		{"beside", []string{"beside/mixed.nix has `count` beside `config`"}},
		{"readonly", []string{"option `fixed` is read-only, but is defined in ", "readonly/one.nix", "readonly/two.nix"}},
		{"listelem", []string{"option `list.\"[definition 1-entry 2]\"`: the definition in ", "listelem/list.nix is not of type `signed integer`"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", "modules", "errors", tc.name)
			if out, _, err := evalModulesWith(t.Context(), t, reference, dir); err == nil {
				t.Fatalf("nixpkgs' lib accepts the case: %s", out)
			}
			out, stderr, err := evalModulesWith(t.Context(), t, ourLib(t), dir)
			if err == nil {
				t.Fatalf("Landscaper's lib accepts the case: %s", out)
			}
			msg := cleanNixError(stderr, dir)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q:\n%s", w, msg)
				}
			}
		})
	}
}
