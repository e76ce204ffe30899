package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// The sources the computed members read:
//   - a: a file, whose sha256 the provider knows at plan time;
//   - e: a command, whose stdout is known only after it ran; it prints
//     characters that Nix escaping functions change;
//   - j: a command printing JSON.
const (
	aContents = "alpha\n"
	eStdout   = "he said \"hi\" \\ $HOME <&> @@ 100%\nline2\t!"
	jStdout   = `{"key":"v-zz","n":42,"list":["x","y"]}`
)

const computeSources = `
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "alpha\n"; }; };
  members.e = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%s" "he said \"hi\" \\ $HOME <&> @@ 100%\nline2\t!" ]; }; };
  members.j = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "printf '{\"key\":\"v-%s\",\"n\":42,\"list\":[\"x\",\"y\"]}' \"$X\"" ]; env.X = "zz"; }; };
`

// nixJSON is what builtins.toJSON makes of a string (for the characters
// used here it matches encoding/json without HTML escaping).
func nixJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// computeCase is one member whose contents compute with a source's output.
type computeCase struct {
	name string
	// expr is the Nix expression for the member's contents; `a`, `e`
	// and `j` are the sources' outputs (see the let in the deployment).
	expr string
	// source is the member whose output the expression uses.
	source string
	want   string
}

// TestComputedInputs checks that members whose inputs compute with another
// member's output (hash, slice, length, parse, escape, compare) get the
// value computed from the real output, and that they run after it.
func TestComputedInputs(t *testing.T) {
	t.Parallel()
	aSHA := sha256Hex(aContents)
	together := []computeCase{
		{"hash-a", `builtins.hashString "sha256" a`, "a", sha256Hex(aSHA)},
		{"hash-e", `builtins.hashString "sha256" e`, "e", sha256Hex(eStdout)},
		{"slice-a", `builtins.substring 0 8 a`, "a", aSHA[:8]},
		{"slice-e", `builtins.substring 3 4 e`, "e", eStdout[3:7]},
		{"length-a", `toString (builtins.stringLength a)`, "a", "64"},
		{"length-e", `toString (builtins.stringLength e)`, "e", strconv.Itoa(len(eStdout))},
		{"parse-j", `(builtins.fromJSON j).key`, "j", "v-zz"},
		{"parse-j-arith", `toString ((builtins.fromJSON j).n + 1)`, "j", "43"},
		{"parse-j-list", `builtins.concatStringsSep "+" (builtins.fromJSON j).list`, "j", "x+y"},
		{"tojson-a", `builtins.toJSON { x = a; }`, "a", nixJSON(map[string]string{"x": aSHA})},
		{"tojson-e", `builtins.toJSON { x = e; }`, "e", nixJSON(map[string]string{"x": eStdout})},
		{"replace-a", `builtins.replaceStrings ["a"] ["b"] a`, "a", strings.ReplaceAll(aSHA, "a", "b")},
		{"replace-e", `builtins.replaceStrings ["\""] ["'"] e`, "e", strings.ReplaceAll(eStdout, `"`, `'`)},
		{"upper-a", `builtins.replaceStrings ["a" "b" "c" "d" "e" "f"] ["A" "B" "C" "D" "E" "F"] a`, "a", strings.ToUpper(aSHA)},
		{"interpolate-e", `"[${e}]"`, "e", "[" + eStdout + "]"},
		{"whole-e", `e`, "e", eStdout},
		{"whole-j", `j`, "j", jStdout},
		// Comparisons: the result is the same for every stand-in, so
		// only the real value tells.
		{"length-compare-a", `if builtins.stringLength a == 64 then "long" else "short"`, "a", "long"},
		{"length-compare-e", `if builtins.stringLength e == ` + strconv.Itoa(len(eStdout)) + ` then "right" else "wrong"`, "e", "right"},
		{"equal-a", `if a == "` + aSHA + `" then "equal" else "different"`, "a", "equal"},
		{"equal-e", `if e == "` + nixEscape(eStdout) + `" then "equal" else "different"`, "e", "equal"},
		{"prefix-j", `if builtins.substring 0 1 j == "{" then "object" else "other"`, "j", "object"},
	}
	// Expressions that fail to evaluate for some stand-ins (the output
	// has fewer lines than the code expects) but not for the real value;
	// each gets a deployment of its own so that a failure does not hide
	// the others.
	alone := []computeCase{
		{"second-line-split", `builtins.elemAt (builtins.split "\n" e) 2`, "e", strings.SplitN(eStdout, "\n", 2)[1]},
		{"second-line-match", `builtins.elemAt (builtins.match "([^\n]*)\n(.*)" e) 1`, "e", strings.SplitN(eStdout, "\n", 2)[1]},
	}
	t.Run("together", func(t *testing.T) {
		t.Parallel()
		// A member computing with a computed member: a chain of two.
		chain := `  members.chain = { type = providers.local.file; inputs = { name = "out/chain"; contents = builtins.substring 0 16 members.hash-e.outputs.sha256; }; };` + "\n"
		dir, evs := applyComputed(t, together, chain)
		wantFile(t, dir, "out/chain", sha256Hex(sha256Hex(eStdout))[:16])
		requireOrder(t, evs, "done", "hash-e", "started", "chain")
	})
	for _, c := range alone {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			applyComputed(t, []computeCase{c}, "")
		})
	}
}

// nixEscape quotes s for a Nix double-quoted string.
func nixEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "\n", `\n`, "\t", `\t`).Replace(s)
}

// applyComputed applies a deployment of the sources, the cases and extra
// members, checks each case's file and event order and that a second plan
// is clean.
func applyComputed(t *testing.T, cases []computeCase, extra string) (string, []event) {
	t.Helper()
	var b strings.Builder
	b.WriteString("{ members, providers, ... }:\nlet a = members.a.outputs.sha256; e = members.e.outputs.stdout; j = members.j.outputs.stdout; in {\n")
	b.WriteString(computeSources)
	for _, c := range cases {
		fmt.Fprintf(&b, "  members.%s = { type = providers.local.file; inputs = { name = \"out/%s\"; contents = %s; }; };\n", c.name, c.name, c.expr)
	}
	b.WriteString(extra)
	b.WriteString("}\n")
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", b.String())

	out, _ := mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs := events(t, out)
	wantFile(t, dir, "out/a", aContents)
	for _, c := range cases {
		wantFile(t, dir, "out/"+c.name, c.want)
		requireOrder(t, evs, "done", c.source, "started", c.name)
	}
	if t.Failed() {
		t.Logf("apply output:\n%s", out)
	}

	// Nothing is left to do: a fresh plan (outputs read from the state)
	// computes the same values.
	out, _, code := run(t, dir, "plan", "--detailed-exitcode", "--json")
	if code != 0 {
		var changed []string
		if code == 2 {
			for _, c := range planOf(t, events(t, out)).Changes {
				if c.Action != "no-op" {
					changed = append(changed, c.Member+":"+c.Action)
				}
			}
		}
		t.Errorf("plan after apply: exit %d, want 0 (no changes); changes: %v", code, changed)
	}
	return dir, evs
}
