package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// promiseDeployment is a deployment of a file f (contents F), a command cmd
// that prints C, and the members that the case computes from their
// outputs.
func promiseDeployment(f, c, rest string) string {
	return fmt.Sprintf(`{ members, providers, ... }:
let
  file = name: contents: { type = providers.local.file; inputs = { name = "out/${name}"; inherit contents; }; };
  f = members.f.outputs;
  cmd = members.cmd.outputs;
in {
  members.f = file "f" %s;
  members.cmd = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "%%s" %s ]; }; };
%s
}
`, nixString(f), nixString(c), rest)
}

func nixString(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), "${", `\${`)
}

// TestThePlanIsAPromise: for deployments that compute inputs, and even
// which members exist, from outputs in every way Nix allows, each update
// is planned, then applied: the apply does exactly what the plan showed
// (the same action for each member, no member the plan did not name, no
// extra round of evaluation after a complete plan), every input value the
// plan showed as known is the value the provider got (the state records
// it), and the next plan is empty.
func TestThePlanIsAPromise(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rest string
	}{
		{"pass-through", `  members.g = file "g" cmd.stdout;`},
		{"interpolation", `  members.g = file "g" "cmd said ${cmd.stdout}, f is ${f.sha256}";`},
		{"substring and interpolation", `  members.g = file "g" "short=${builtins.substring 0 8 f.sha256} stdout=${cmd.stdout}";`},
		{"hashString", `  members.g = file "g" (builtins.hashString "sha256" cmd.stdout);`},
		{"fromJSON", `  members.g = file "g" (toString ((builtins.fromJSON cmd.stdout).n or 0));`},
		{"length", `  members.g = file "g" (toString (builtins.stringLength cmd.stdout));`},
		{"comparison", `  members.g = file "g" (if cmd.stdout == "{\"n\":1}" then "one" else "other");`},
		{"chain", `  members.g = file "g" cmd.stdout;
  members.h = file "h" "g is ${members.g.outputs.sha256}";
  members.i = file "i" (builtins.substring 0 6 members.h.outputs.sha256);`},
		{"member set", `  members.set.members = builtins.listToAttrs (map (n: { name = n; value = file "set-${n}" n; })
    ((builtins.fromJSON cmd.stdout).names or [ ]));`},
	}
	steps := []struct{ name, f, c string }{
		{"first apply", "one", `{"n":1,"names":["a","b"]}`},
		{"nothing changes", "one", `{"n":1,"names":["a","b"]}`},
		{"the command's output changes", "one", `{"n":2,"names":["a","c"]}`},
		{"the file changes", "two", `{"n":2,"names":["a","c"]}`},
		{"both change", "three", `{"n":1,"names":["b"]}`},
		{"the output changes back and forth", "three", `{"n":1,"names":["b"],"x":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, st := range steps {
				writeFile(t, dir, "landscaper.nix", promiseDeployment(st.f, st.c, tc.rest))
				checkPromise(t, dir, st.name)
				if t.Failed() {
					return
				}
			}
		})
	}
}

// planJSON is the plan of `landscaper plan --json` with the values.
type planJSON struct {
	Kind      string   `json:"kind"`
	Undecided []string `json:"undecided"`
	Changes   []struct {
		Member   string          `json:"member"`
		Action   string          `json:"action"`
		Deferred bool            `json:"deferred"`
		After    json.RawMessage `json:"after"`
		Unknown  []string        `json:"unknown"`
	} `json:"changes"`
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

// checkPromise plans, applies and plans again in dir, and compares.
func checkPromise(t *testing.T, dir, step string) {
	t.Helper()
	out, _ := mustRun(t, dir, 0, "plan", "--json")
	var plan planJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, `{"kind":"plan"`) {
			if err := json.Unmarshal([]byte(l), &plan); err != nil {
				t.Fatalf("%s: plan: %v", step, err)
			}
		}
	}
	if plan.Kind != "plan" {
		t.Fatalf("%s: no plan in\n%s", step, out)
	}
	planned := map[string]string{}
	for _, c := range plan.Changes {
		planned[c.Member] = c.Action
	}
	applyOut, _ := mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	evs := events(t, applyOut)
	applied := map[string]string{}
	for _, ev := range evs {
		if ev.Kind == "done" && ev.Member != "" {
			applied[ev.Member] = ev.Action
		}
		if ev.Kind == "info" && strings.Contains(ev.Message, "evaluating again") && len(plan.Undecided) == 0 {
			t.Errorf("%s: the apply evaluated again after a complete plan: %s", step, ev.Message)
		}
	}
	partial := len(plan.Undecided) > 0
	for member, action := range applied {
		if want, ok := planned[member]; (!ok || want != action) && !partial {
			t.Errorf("%s: apply did %s %q, the plan said %q", step, action, member, want)
		}
	}
	for member, action := range planned {
		if action == "no-op" {
			continue
		}
		if _, ok := applied[member]; !ok && !deviationReported(evs, member) {
			t.Errorf("%s: the plan said %s %q, the apply did nothing and did not say why", step, action, member)
		}
	}
	// Every value the plan showed as known is what the provider got.
	recorded := recordedInputs(t, dir)
	for _, c := range plan.Changes {
		if c.Deferred || c.Action == "delete" || len(c.After) == 0 {
			continue
		}
		var after map[string]any
		_ = json.Unmarshal(c.After, &after)
		got := recorded[c.Member]
		for k, v := range after {
			if v == nil || contains(c.Unknown, k) {
				continue
			}
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s: %s.%s was planned as %v, the provider got %v", step, c.Member, k, v, got[k])
			}
		}
	}
	if out, _, code := run(t, dir, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("%s: the plan after the apply is not empty (exit %d):\n%s", step, code, out)
	}
	if t.Failed() {
		t.Logf("%s: plan:\n%s\napply:\n%s", step, out, applyOut)
	}
}

// deviationReported: the apply said why a planned change of member was
// not made.
func deviationReported(evs []event, member string) bool {
	for _, ev := range evs {
		if ev.Member == member && ev.Kind == "info" && strings.Contains(ev.Message, "unchanged") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// recordedInputs reads every member's recorded inputs from the state.
func recordedInputs(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".landscaper", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Resources map[string]struct {
			Inputs map[string]any `json:"inputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	names := make([]string, 0, len(st.Resources))
	for n, r := range st.Resources {
		out[n] = r.Inputs
		names = append(names, n)
	}
	sort.Strings(names)
	return out
}
