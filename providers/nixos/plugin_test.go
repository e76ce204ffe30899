package nixos_test

import (
	"context"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestBinary builds the provider binary and drives it as the engine does:
// an activation through the plugin protocol, with the login key sensitive.
func TestBinary(t *testing.T) {
	t.Parallel()
	client := sdktest.LaunchBinary(t, "github.com/landscaper-nix/landscaper/providers/nixos/cmd/landscaper-provider-nixos")
	ctx := context.Background()
	schema, err := client.GetSchema(ctx)
	if err != nil {
		t.Fatalf("GetSchema: %v", err)
	}
	if schema.Name != "nixos" || schema.Types["system"] == nil || schema.Types["host-key"] == nil {
		t.Fatalf("schema %s with types %v", schema.Name, schema.Types)
	}
	for _, typ := range []string{"system", "host-key"} {
		if a, ok := schema.Types[typ].Input("privateKey"); !ok || !a.Sensitive {
			t.Errorf("%s input privateKey = %+v; want it sensitive", typ, a)
		}
	}
	f := newFixture(t, testhost.Options{})
	v1 := testhost.BuildSystem(t, testhost.System{Name: "binary-v1"})
	r, err := client.Create(ctx, resource.CreateRequest{Type: "nixos.system", Name: "web",
		Inputs: resource.Values{JSON: f.h.JSON(f.systemInputs(v1, nil))}}, nil)
	if err != nil {
		t.Fatalf("Create: %v", client.ExplainFailure(err))
	}
	if r.Diagnostics.HasError() {
		t.Fatalf("Create: %v", r.Diagnostics.Err())
	}
	if !strings.Contains(string(r.Outputs.JSON), v1) || f.host.CurrentSystem() != v1 {
		t.Errorf("outputs %s, host runs %q", r.Outputs.JSON, f.host.CurrentSystem())
	}
}
