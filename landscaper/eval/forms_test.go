package eval

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// evaluatorPair evaluates two deployments with the same stand-in tokens.
func evaluatorPair(t *testing.T, a, b Source) (*Evaluator, *Evaluator) {
	t.Helper()
	ea, err := New(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ea.Close() })
	eb, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eb.Close() })
	eb.nonceA, eb.nonceB = ea.nonceA, ea.nonceB
	return ea, eb
}

// TestModuleFormEvaluatesLikeFunctionForm: the same deployment written as
// a function (testdata/forms/function.nix) and as modules that merge
// members, carry an output through an option and define rollouts in two
// files (testdata/forms/module) gives the engine exactly the same
// evaluations: structure and the outputs it forces, inputs in both token
// spellings, the parts that fail on unknown outputs, the members a
// fromJSON of an unknown output leaves out, and rollouts.
func TestModuleFormEvaluatesLikeFunctionForm(t *testing.T) {
	ctx := t.Context()
	function, module := evaluatorPair(t,
		Source{File: filepath.Join("testdata", "forms", "function.nix")},
		Source{File: filepath.Join("testdata", "forms", "module", "landscaper.nix")})
	known := map[string]map[string]json.RawMessage{"e": {"stdout": json.RawMessage(`"[\"x\",\"y\"]"`)}}
	for _, tc := range []struct {
		name string
		req  StructureRequest
	}{
		{"structure with known outputs", StructureRequest{Types: localTypes(), Known: known, TraceForced: true}},
		{"names", StructureRequest{Types: localTypes(), Known: known, NamesOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, fforced, err := function.Structure(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			mm, mforced, err := module.Structure(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(fm) != 9 {
				t.Errorf("the function form has %d members, want 9: %+v", len(fm), fm)
			}
			if !reflect.DeepEqual(fm, mm) {
				t.Errorf("members differ\nfunction: %+v\nmodule:   %+v", fm, mm)
			}
			slices.Sort(fforced)
			slices.Sort(mforced)
			if !reflect.DeepEqual(fforced, mforced) {
				t.Errorf("forced outputs differ\nfunction: %v\nmodule:   %v", fforced, mforced)
			}
		})
	}
	t.Run("structure with an unknown output fails alike", func(t *testing.T) {
		_, _, ferr := function.Structure(ctx, StructureRequest{Types: localTypes()})
		_, _, merr := module.Structure(ctx, StructureRequest{Types: localTypes()})
		if ferr == nil || merr == nil {
			t.Fatalf("a member set from fromJSON of a stand-in evaluated: function %v, module %v", ferr, merr)
		}
	})
	t.Run("inputs", func(t *testing.T) {
		req := Request{Types: localTypes(), Twice: true}
		fr, err := function.Evaluate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		mr, err := module.Evaluate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(fr.Members) != 7 {
			t.Errorf("the function form gives %d members while e is unknown, want 7 (dyn waits)", len(fr.Members))
		}
		if !reflect.DeepEqual(fr.Members, mr.Members) {
			t.Errorf("members differ\nfunction: %+v\nmodule:   %+v", fr.Members, mr.Members)
		}
		if !reflect.DeepEqual(fr.Second, mr.Second) {
			t.Errorf("second spelling differs\nfunction: %v\nmodule:   %v", fr.Second, mr.Second)
		}
		if !reflect.DeepEqual(fr.Failing, mr.Failing) {
			t.Errorf("failing parts differ\nfunction: %v\nmodule:   %v", fr.Failing, mr.Failing)
		}
		// The failing parts are the parts that use a's output, not whole
		// members.
		if got := mr.Failing["nested"]; len(got) != 1 || len(got[0]) != 3 {
			t.Errorf("nested's failing parts: %v, want only deep.list[1]", got)
		}
	})
	t.Run("rollouts", func(t *testing.T) {
		fd, err := function.Declarations(ctx, localTypes())
		if err != nil {
			t.Fatal(err)
		}
		md, err := module.Declarations(ctx, localTypes())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fd, md) || len(md.Rollouts) != 1 {
			t.Errorf("declarations differ\nfunction: %+v\nmodule:   %+v", fd, md)
		}
	})
}

// TestModuleDeploymentErrors: a member defined in several modules merges,
// and what cannot merge is an error naming the member, the attribute and
// both files.
func TestModuleDeploymentErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"two types", map[string]string{
			"a.nix": `{ providers, ... }: { members.x = { type = providers.local.file; inputs.name = "x"; }; }`,
			"b.nix": `{ providers, ... }: { members.x.type = providers.local.exec; }`,
		}, []string{"option `members.x.type` has conflicting definitions: providers.local.exec in ", "b.nix and providers.local.file in ", "a.nix"}},
		{"two values of an input", map[string]string{
			"a.nix": `{ providers, ... }: { members.x = { type = providers.local.file; inputs.name = "x"; }; }`,
			"b.nix": `{ providers, ... }: { members.x.inputs.name = "y"; }`,
		}, []string{"option `members.x.inputs.name` has conflicting definitions: \"y\" in ", "b.nix and \"x\" in ", "a.nix"}},
		{"an unknown member attribute", map[string]string{
			"a.nix": `{ providers, ... }: { members.x = { type = providers.local.file; inputs.name = "x"; }; }`,
			"b.nix": `{ providers, ... }: { members.x.input.name = "y"; }`,
		}, []string{"member x: unknown attribute `input` in ", "b.nix (a member has `type` and `inputs`, or `members`)"}},
		{"a wrong type", map[string]string{
			"a.nix": `{ providers, ... }: { members.x = { type = 3; inputs.name = "x"; }; }`,
		}, []string{"option `members.x.type`: the definition in ", "a.nix is not of type `resource type (providers.<provider>.<type>)`: 3"}},
		{"an undeclared option", map[string]string{
			"a.nix": `{ providers, ... }: { rollout.x.members = [ ]; }`,
		}, []string{"option `rollout` does not exist (defined in ", "a.nix); did you mean `rollouts`?"}},
		{"a rollout attribute", map[string]string{
			"a.nix": `{ providers, ... }: { rollouts.x = { members = [ ]; batchsize = 2; }; }`,
		}, []string{"option `rollouts.x.batchsize` does not exist (defined in ", "a.nix); did you mean `batchSize`?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			imports := []string{}
			for name, text := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				imports = append(imports, "./"+name)
			}
			slices.Sort(imports)
			main := "{ imports = [ " + strings.Join(imports, " ") + " ]; }"
			if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(main), 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := New(Source{File: filepath.Join(dir, "landscaper.nix")})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			_, _, err = e.Structure(t.Context(), StructureRequest{Types: localTypes()})
			if err == nil {
				_, err = e.Declarations(t.Context(), localTypes())
			}
			if err == nil {
				_, err = e.Evaluate(t.Context(), Request{Types: localTypes()})
			}
			if err == nil {
				t.Fatal("the deployment evaluated")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
