package engine

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// traceDeployment: first and second compute with a value they share,
// computed from an output not known until apply; parses fails, while that
// output is a stand-in, in a way Nix cannot catch.
const traceDeployment = `{ members, providers, ... }:
let shared = builtins.hashString "sha256" members.src.outputs.stdout; in {
  members.src = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "{}" ]; }; };
  members.other = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "x" ]; }; };
  members.first = { type = providers.local.file; inputs = { name = "out/first"; contents = shared; }; };
  members.second = { type = providers.local.file; inputs = { name = "out/second"; contents = shared + builtins.hashString "sha1" members.other.outputs.stdout; }; };
  members.parses = { type = providers.local.file; inputs = { name = "out/parses"; contents = builtins.toJSON (builtins.fromJSON members.src.outputs.stdout); }; };
  members.group.members.inner = { type = providers.local.file; inputs = { name = "out/inner"; contents = builtins.hashString "sha256" members.other.outputs.stdout; }; };
}
`

// TestTraceMembers: members traced together get the dependencies each gets
// when traced alone, in one evaluation; when that evaluation fails as a
// whole, each is traced alone.
func TestTraceMembers(t *testing.T) {
	bin := localProvider(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(traceDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	planned := func() *Engine {
		e := openLocal(t, dir, bin)
		if _, err := e.Plan(t.Context()); err != nil {
			t.Fatal(err)
		}
		return e
	}
	needs := func(e *Engine, paths []string) map[string][]string {
		out := map[string][]string{}
		for _, p := range paths {
			m := e.members[p]
			if !m.traced {
				t.Errorf("%s is not marked traced", p)
			}
			out[p] = m.deps
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		paths       []string
		invocations int64
	}{
		{"together", []string{"first", "second", "group.inner"}, 1},
		{"one fails them all", []string{"first", "parses", "second"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alone := planned()
			for _, p := range tc.paths {
				if err := alone.traceMember(t.Context(), p); err != nil {
					t.Fatal(err)
				}
			}
			want := needs(alone, tc.paths)
			alone.Close()

			e := planned()
			before := e.evaluator.Invocations()
			if err := e.traceMembers(t.Context(), tc.paths); err != nil {
				t.Fatal(err)
			}
			if n := e.evaluator.Invocations() - before; n != tc.invocations {
				t.Errorf("%d nix invocations, want %d", n, tc.invocations)
			}
			if got := needs(e, tc.paths); !reflect.DeepEqual(got, want) {
				t.Errorf("traced together: %v, alone: %v", got, want)
			}
			e.Close()
		})
	}
	// Not vacuous: the shared value makes both need src, and second
	// needs other too.
	e := planned()
	if err := e.traceMembers(t.Context(), []string{"first", "second"}); err != nil {
		t.Fatal(err)
	}
	if got := needs(e, []string{"first", "second"}); !reflect.DeepEqual(got, map[string][]string{"first": {"src"}, "second": {"other", "src"}}) {
		t.Errorf("needs %v", got)
	}
}

// TestTraceNameWithSpace: a member that hashes the output of a member
// whose name holds a space waits for that output (the trace line was read
// up to the space, so the engine found no need and planned the hash of a
// stand-in).
func TestTraceNameWithSpace(t *testing.T) {
	bin := localProvider(t)
	dir := t.TempDir()
	deployment := `{ members, providers, ... }: {
  members."the src" = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "hello" ]; }; };
  members.h = { type = providers.local.file; inputs = { name = "out/h"; contents = builtins.hashString "sha256" members."the src".outputs.stdout; }; };
}`
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(deployment), 0o644); err != nil {
		t.Fatal(err)
	}
	e := openLocal(t, dir, bin)
	plan, err := e.Plan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Changes {
		if c.Member != "h" {
			continue
		}
		if !c.Deferred || !reflect.DeepEqual(c.WaitsFor, []string{"the src.stdout"}) || !reflect.DeepEqual(c.Deps, []string{"the src"}) {
			t.Errorf("h: deferred %v, waits for %v, needs %v; want deferred, waiting for and needing the src", c.Deferred, c.WaitsFor, c.Deps)
		}
		return
	}
	t.Errorf("h is not in the plan")
}
