package ui_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/landscaper/ui"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// secretPlan builds a plan whose changes hold secret at sensitive paths:
// the top-level attribute key, inside a nested object and in a list.
func secretPlan(t *testing.T, key, secret string) *engine.Plan {
	return valuePlan(t, key, secret, secret+"-old")
}

// valuePlan is secretPlan with any JSON values (strings, numbers, objects,
// lists) as the new and the recorded sensitive value.
func valuePlan(t *testing.T, key string, secret, old any) *engine.Plan {
	inputs := func(s any) json.RawMessage {
		b, err := json.Marshal(map[string]any{
			key:     s,
			"plain": "shown",
			"nested": map[string]any{
				"inner": map[string]any{"deep": []any{s, 1}},
				"list":  []any{"visible", s, map[string]any{"k": s}},
				"note":  "also shown",
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sensitive := []resource.Path{
		resource.AttrPath(key),
		resource.AttrPath("nested", "inner"),
		resource.AttrPath("nested", "list").Index(1),
		resource.AttrPath("nested", "list").Index(2).Attr("k"),
	}
	prior := &state.Resource{Type: "local.file", Provider: "local", Inputs: inputs(old), SensitiveInputs: sensitive}
	change := func(member string, a resource.Action, p *state.Resource) *engine.Change {
		return &engine.Change{
			Member: member, Type: "local.file", Provider: "local", Action: a, Prior: p,
			Inputs: inputs(secret), Sensitive: sensitive,
			Changed:         []resource.Path{resource.AttrPath(key), resource.AttrPath("nested", "list").Index(1)},
			RequiresReplace: []resource.Path{resource.AttrPath(key)},
			UnknownOutputs:  []string{"id"},
		}
	}
	return &engine.Plan{Changes: []*engine.Change{
		change("created", resource.ActionCreate, nil),
		change("updated", resource.ActionUpdate, prior),
		change("replaced", resource.ActionReplace, prior),
		change("deleted", resource.ActionDelete, prior),
	}}
}

func renderAll(t *testing.T, p *engine.Plan) string {
	var b bytes.Buffer
	ui.RenderPlan(&b, p, ui.Style{})
	ui.RenderPlan(&b, p, ui.Style{Color: true})
	j, err := json.Marshal(ui.PlanToJSON(p))
	if err != nil {
		t.Fatal(err)
	}
	b.Write(j)
	return b.String()
}

// FuzzRenderPlanHidesSecrets: a value at a sensitive path never shows in
// the rendered plan (text, colour or JSON): the output does not depend on
// it at all, whether it is a string or, when the fuzzed secret is a JSON
// document, that document (a number, an object, a list). The seeds are
// below and in testdata/fuzz/FuzzRenderPlanHidesSecrets.
func FuzzRenderPlanHidesSecrets(f *testing.F) {
	f.Add("password", "hunter2-hunter2")
	f.Add("privateKey", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
	f.Add("a b", `{"nested":"json"}`)
	f.Add("x.y", "<script>&amp;</script>")
	f.Add("token", "\x1b[31mred\x1b[0m secret")
	f.Add("plain", "shadowing the plain attribute")
	f.Add("nested", "replaces the nested object")
	f.Fuzz(func(t *testing.T, key, secret string) {
		if !utf8.ValidString(key) {
			// JSON turns invalid UTF-8 in a key into U+FFFD; the engine's
			// sensitive paths come from decoded JSON, so they never hold it.
			return
		}
		got := renderAll(t, secretPlan(t, key, secret))
		ref := renderAll(t, secretPlan(t, key, "REFERENCE"))
		if got != ref {
			t.Fatalf("the rendered plan depends on the sensitive value %q (key %q):\n%s\n--- with another value:\n%s", secret, key, got, ref)
		}
		if len(secret) >= 8 && !strings.Contains(ref, secret) && strings.Contains(got, secret) {
			t.Fatalf("the rendered plan shows the sensitive value %q:\n%s", secret, got)
		}
		var doc any
		if json.Unmarshal([]byte(secret), &doc) != nil {
			return
		}
		// The same secret as a JSON value of its own, changed or not.
		for _, old := range []any{doc, "old"} {
			got := renderAll(t, valuePlan(t, key, doc, old))
			ref := renderAll(t, valuePlan(t, key, "REFERENCE", "old"))
			if got != ref {
				t.Fatalf("the rendered plan depends on the sensitive JSON value %s (recorded %v, key %q):\n%s\n--- with another value:\n%s", secret, old, key, got, ref)
			}
		}
	})
}
