package eval

import (
	"reflect"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestFailingFor: a member's failing parts are its own, and the whole of
// it when a composite holding it failed whole; a sibling whose name only
// starts alike is not held.
func TestFailingFor(t *testing.T) {
	part := func(name string) resource.Path { return resource.AttrPath(name) }
	r := &Result{Failing: map[string][]resource.Path{
		"a":     {nil},
		"a.b.c": {part("x")},
		"d":     {part("y")},
		"g.h":   {part("z")},
	}}
	tests := []struct {
		path string
		want []resource.Path
	}{
		{"a.b.c", []resource.Path{part("x"), nil}},
		{"a.q", []resource.Path{nil}},
		{"a", []resource.Path{nil}},
		{"ab.c", nil},
		{"d", []resource.Path{part("y")}},
		{"d.e", nil},
		{"g.h.i", nil},
		{"plain", nil},
	}
	for _, tt := range tests {
		if got := r.FailingFor(tt.path); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FailingFor(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
