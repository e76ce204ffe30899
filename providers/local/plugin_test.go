package local_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestBinary builds the provider binary and drives it as the engine does.
func TestBinary(t *testing.T) {
	client := sdktest.LaunchBinary(t, "github.com/landscaper-nix/landscaper/providers/local/cmd/landscaper-provider-local")
	ctx := context.Background()
	dir := t.TempDir()

	schema, err := client.GetSchema(ctx)
	if err != nil {
		t.Fatalf("GetSchema: %v", err)
	}
	if schema.Name != "local" || schema.Version != "0.1.0" || schema.Types["file"] == nil || schema.Types["exec"] == nil {
		t.Fatalf("schema = %s %s with types %v; want local 0.1.0 with file and exec", schema.Name, schema.Version, schema.Types)
	}
	if a, ok := schema.Types["file"].Input("name"); !ok || !a.Required || !a.ForceNew {
		t.Errorf("file input name = %+v; want required and forcing replacement", a)
	}

	name := filepath.Join(dir, "out", "via-plugin.txt")
	inputs, err := json.Marshal(map[string]string{"name": name, "contents": "hello\n"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.Create(ctx, resource.CreateRequest{Type: "local.file", Name: "greeting",
		Inputs: resource.Values{JSON: inputs}}, nil)
	if err != nil {
		t.Fatalf("Create: %v", client.ExplainFailure(err))
	}
	if r.Diagnostics.HasError() {
		t.Fatalf("Create: %v", r.Diagnostics.Err())
	}
	if got := readFile(t, name); got != "hello\n" {
		t.Fatalf("contents = %q", got)
	}
	if want := `{"sha256":"` + sha("hello\n") + `","path":"` + name + `"}`; string(r.Outputs.JSON) != want {
		t.Errorf("outputs = %s, want %s", r.Outputs.JSON, want)
	}

	client.Kill()
	if !client.Exited() {
		t.Error("provider still runs after Kill")
	}
}
