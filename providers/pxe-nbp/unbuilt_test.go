package pxenbp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestUnbuiltStorePaths: a kernel or initrd in the Nix store that is not
// built yet passes validation and planning (the engine builds it right
// before the apply), but an apply with it still missing fails on the input.
func TestUnbuiltStorePaths(t *testing.T) {
	h := newHarness(t)
	files := makeBootFiles(t)
	const missing = "/nix/store/00000000000000000000000000000000-not-built-yet/bzImage"
	cases := []struct {
		name, path string
		inputs     map[string]any
	}{
		{"kernel", "kernel", with(files.inputs(t.TempDir()), "kernel", missing)},
		{"initrd", "initrd[0]", with(files.inputs(t.TempDir()), "initrd", []any{missing})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diags := validate(t, h, tc.inputs); diags.HasError() {
				t.Fatalf("an unbuilt store path is refused before the apply: %v", diags.Err())
			}
			if p := h.Plan(typ, nil, tc.inputs); p.Diagnostics.HasError() || p.Action != resource.ActionCreate {
				t.Fatalf("plan: %s %v", p.Action, p.Diagnostics.Err())
			}
			r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: typ, Name: "test", Inputs: resource.Values{JSON: h.JSON(tc.inputs)}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Diagnostics.HasError() {
				t.Fatal("an entry whose kernel or initrd does not exist was written")
			}
			if got := errorPaths(r.Diagnostics); len(got) != 1 || got[0] != tc.path || !strings.Contains(r.Diagnostics.Err().Error(), "does not exist") {
				t.Errorf("create error at %v: %v; want one at %s saying it does not exist", got, r.Diagnostics.Err(), tc.path)
			}
		})
	}
	// Outside the store a missing file is an error at once.
	if diags := validate(t, h, with(files.inputs(t.TempDir()), "kernel", "/no/such/bzImage")); !diags.HasError() {
		t.Error("a missing kernel outside the store passed validation")
	}
}
