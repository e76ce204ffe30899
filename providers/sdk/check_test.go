package sdk

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

func TestCheckObject(t *testing.T) {
	attrs := attributes([]Attr{
		String("name", "").Required(),
		String("mode", "").Default("0644"),
		List("args", "string", ""),
		Map("env", "string", ""),
		Object("destroy", "", String("executable", "").Required()),
	})
	tests := []struct {
		name      string
		doc       string
		unknown   []resource.Path
		wantPaths []string // attribute paths of the errors, in order
		wantText  string   // part of the first error
		wantMode  string   // the mode after defaults, when no error
	}{
		{name: "default applied", doc: `{"name":"a"}`, wantMode: `"0644"`},
		{name: "null is not given", doc: `{"name":"a","mode":null}`, wantMode: `"0644"`},
		{name: "unknown input", doc: `{"name":"a","colour":1}`, wantPaths: []string{"colour"}, wantText: "unknown input"},
		{name: "missing required", doc: `{}`, wantPaths: []string{"name"}, wantText: "missing required input"},
		{name: "unknown required is fine", doc: `{}`, unknown: []resource.Path{resource.AttrPath("name")}, wantMode: `"0644"`},
		{name: "wrong type", doc: `{"name":1}`, wantPaths: []string{"name"}, wantText: "expected string, got a number"},
		{name: "list element", doc: `{"name":"a","args":["x",2]}`, wantPaths: []string{"args[1]"}},
		{name: "map value", doc: `{"name":"a","env":{"A":true}}`, wantPaths: []string{"env.A"}},
		{name: "nested required", doc: `{"name":"a","destroy":{}}`, wantPaths: []string{"destroy.executable"}},
		{name: "secret not shown", doc: `{"name":{"secret":"hunter22"}}`, wantPaths: []string{"name"}, wantText: "an attribute set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, diags := checkObject(attrs, json.RawMessage(tt.doc), nil, tt.unknown)
			var paths []string
			for _, d := range diags {
				paths = append(paths, d.Attribute.String())
				if strings.Contains(d.String(), "hunter22") {
					t.Errorf("a diagnostic shows the value: %s", d)
				}
			}
			if strings.Join(paths, " ") != strings.Join(tt.wantPaths, " ") {
				t.Fatalf("errors at %v, want %v (%v)", paths, tt.wantPaths, diags)
			}
			if tt.wantText != "" && !strings.Contains(diags[0].String(), tt.wantText) {
				t.Errorf("error %q does not say %q", diags[0], tt.wantText)
			}
			if tt.wantMode != "" && string(obj["mode"]) != tt.wantMode {
				t.Errorf("mode %s, want %s", obj["mode"], tt.wantMode)
			}
		})
	}
}

func TestChangedAttrs(t *testing.T) {
	attrs := attributes([]Attr{String("name", "").ForceNew(), String("contents", "")})
	tests := []struct {
		name             string
		prior, desired   string
		unknown          []resource.Path
		changed, replace int
	}{
		{"same", `{"name":"a","contents":"x"}`, `{"contents":"x","name":"a"}`, nil, 0, 0},
		{"update", `{"name":"a","contents":"x"}`, `{"name":"a","contents":"y"}`, nil, 1, 0},
		{"replace", `{"name":"a","contents":"x"}`, `{"name":"b","contents":"x"}`, nil, 1, 1},
		{"unknown counts as changed", `{"name":"a","contents":"x"}`, `{"name":"a","contents":null}`, []resource.Path{resource.AttrPath("contents")}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prior, desired map[string]json.RawMessage
			_ = json.Unmarshal([]byte(tt.prior), &prior)
			_ = json.Unmarshal([]byte(tt.desired), &desired)
			changed, replace := changedAttrs(attrs, prior, desired, tt.unknown)
			if len(changed) != tt.changed || len(replace) != tt.replace {
				t.Errorf("changed %v replace %v, want %d and %d", changed, replace, tt.changed, tt.replace)
			}
		})
	}
}
