package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// countingNix puts a nix-instantiate first in PATH that copies nix's
// stderr (where builtins.trace writes) to a file, and on to the engine,
// which reads the outputs a member forces there; it returns a function
// that counts the traces "EVAL-<member>" written since the last call.
func countingNix(t *testing.T) func() map[string]int {
	t.Helper()
	real, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "stderr")
	script := fmt.Sprintf("#!/bin/sh\nerr=$(mktemp)\n%s \"$@\" 2>\"$err\"\nrc=$?\ncat \"$err\" >>%s\ncat \"$err\" >&2\nrm -f \"$err\"\nexit $rc\n", real, log)
	if err := os.WriteFile(filepath.Join(bin, "nix-instantiate"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return func() map[string]int {
		b, _ := os.ReadFile(log)
		_ = os.Truncate(log, 0)
		counts := map[string]int{}
		for _, line := range strings.Split(string(b), "\n") {
			if _, name, ok := strings.Cut(line, "trace: EVAL-"); ok {
				counts[strings.TrimSpace(name)]++
			}
		}
		return counts
	}
}

// evalCountDeployment has a member whose inputs use no output (plain), one
// that passes an output through (passes) and one that computes with it
// (computes: a hash, which looks like a token's id) or decides with it (a
// comparison: its inputs show nothing of the output, as a NixOS toplevel
// built with a host's key shows a store path); each traces when its
// inputs are evaluated. Of beside and besideComputes, whose contents pass
// an output through or compute with it, the names trace: parts beside an
// output, such as a NixOS toplevel beside a host's address.
const evalCountDeployment = `{ members, providers, ... }: {
  members.plain = { type = providers.local.file; inputs = builtins.trace "EVAL-plain" { name = "out/plain"; contents = "v1"; }; };
  members.passes = { type = providers.local.file; inputs = builtins.trace "EVAL-passes" { name = "out/passes"; contents = "after ${members.plain.outputs.sha256}"; }; };
  members.computes = { type = providers.local.file; inputs = builtins.trace "EVAL-computes" { name = "out/computes"; contents = builtins.hashString "sha256" members.plain.outputs.sha256; }; };
  members.decides = { type = providers.local.file; inputs = builtins.trace "EVAL-decides" { name = "out/decides"; contents = if members.plain.outputs.sha256 == "" then "none" else "some"; }; };
  members.beside = { type = providers.local.file; inputs = { name = builtins.trace "EVAL-beside" "out/beside"; contents = "after ${members.plain.outputs.sha256}"; }; };
  members.besideComputes = { type = providers.local.file; inputs = { name = builtins.trace "EVAL-beside-computes" "out/beside-computes"; contents = builtins.hashString "sha256" members.plain.outputs.sha256; }; };
}
`

// TestEvaluationsPerMember counts how often each member's inputs are
// evaluated (builtins.trace through nix's stderr) by a first plan, its
// apply, a no-op plan and a plan after an edit. A member whose inputs use
// no output is evaluated once per command: the evaluation that finds which
// parts of the inputs use outputs settles it. The others are evaluated in
// every spelling the engine needs (BENCHMARKS.md, "Evaluations per member").
func TestEvaluationsPerMember(t *testing.T) {
	ctx := t.Context()
	bin := localProvider(t)
	counts := countingNix(t)
	dir := t.TempDir()
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(evalCountDeployment)
	counts()
	// How often the members that use outputs are evaluated: every output
	// throwing (the parts that use outputs), spelling A, spelling B for
	// parts that show a token intact (passes), the recorded values for
	// parts that could hide a mangled one (passes, in a command with a
	// state), and, for the members whose inputs compute with an output,
	// one traced evaluation with the values known then. A member whose
	// inputs computed with outputs when it was last planned is evaluated
	// once, alone, with the recorded outputs: that evaluation stands
	// while plain keeps its hash, and is done again, whole (the part
	// beside the output too), once plain's plan shows a new one.
	type evaluations struct{ passes, computes, decides, besideComputes int }
	for _, step := range []struct {
		name  string
		edit  string
		apply bool
		want  evaluations
	}{
		{name: "first plan", want: evaluations{3, 3, 3, 1}},
		{name: "apply", apply: true, want: evaluations{3, 3, 3, 1}},
		{name: "no-op plan", want: evaluations{4, 1, 1, 1}},
		{name: "plan after an edit of plain", edit: "v2", want: evaluations{4, 2, 2, 2}},
	} {
		if step.edit != "" {
			write(strings.Replace(evalCountDeployment, "v1", step.edit, 1))
		}
		e := openLocal(t, dir, bin)
		plan, err := e.Plan(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.apply {
			if _, err := e.Apply(ctx, plan); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		// What the members that compute with plain's hash are planned
		// with: that of the contents this step gives plain.
		contents := "v1"
		if step.edit != "" {
			contents = step.edit
		}
		hash := sha256.Sum256([]byte(contents))
		wantHash := sha256.Sum256([]byte(hex.EncodeToString(hash[:])))
		for _, c := range plan.Changes {
			var in struct{ Contents string }
			_ = json.Unmarshal(c.Inputs, &in)
			if (c.Member == "computes" || c.Member == "besideComputes") && in.Contents != hex.EncodeToString(wantHash[:]) {
				t.Errorf("%s: %s is planned (%s) with contents %q, want the hash of plain's hash", step.name, c.Member, c.Action, in.Contents)
			}
			if c.Member == "decides" && (in.Contents != "some" || ((step.name == "no-op plan" || step.edit != "") && c.Action != resource.ActionNoop)) {
				t.Errorf("%s: decides is planned (%s) with contents %q, want no change to \"some\"", step.name, c.Action, in.Contents)
			}
		}
		e.Close()
		got := counts()
		t.Logf("%s: evaluations per member: plain %d, passes %d, computes %d, decides %d, the part beside an output %d and %d", step.name, got["plain"], got["passes"], got["computes"], got["decides"], got["beside"], got["beside-computes"])
		if got["plain"] != 1 {
			t.Errorf("%s: the member that uses no output was evaluated %d times, want once", step.name, got["plain"])
		}
		if got["beside"] != 1 {
			t.Errorf("%s: the part beside an output passed through was evaluated %d times, want once", step.name, got["beside"])
		}
		if got := (evaluations{got["passes"], got["computes"], got["decides"], got["beside-computes"]}); got != step.want {
			t.Errorf("%s: passes, computes, decides and the part beside besideComputes's output were evaluated %v times, want %v", step.name, got, step.want)
		}
		if got["passes"] == 0 || got["computes"] == 0 || got["decides"] == 0 {
			t.Errorf("%s: a member that uses an output was not evaluated (%v)", step.name, got)
		}
	}
}
