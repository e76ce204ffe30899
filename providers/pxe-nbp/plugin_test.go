package pxenbp_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestBinary builds the provider binary and drives it as the engine does.
func TestBinary(t *testing.T) {
	client := sdktest.LaunchBinary(t, "github.com/landscaper-nix/landscaper/providers/pxe-nbp/cmd/landscaper-provider-pxe-nbp")
	ctx := context.Background()
	dir := t.TempDir()

	schema, err := client.GetSchema(ctx)
	if err != nil {
		t.Fatalf("GetSchema: %v", err)
	}
	if schema.Name != "pxe-nbp" || schema.Version != "0.1.0" || schema.Types["entry"] == nil {
		t.Fatalf("schema = %s %s with types %v; want pxe-nbp 0.1.0 with entry", schema.Name, schema.Version, schema.Types)
	}
	if a, ok := schema.Types["entry"].Input("mac"); !ok || !a.Required || !a.ForceNew {
		t.Errorf("entry input mac = %+v; want required and forcing replacement", a)
	}

	b := makeBootFiles(t)
	bootDir := filepath.Join(dir, "boot")
	inputs, err := json.Marshal(with(b.inputs(bootDir), "mac", "52-54-00-12-34-56",
		"files", map[string]any{"/etc/ssh/ssh_host_ed25519_key": file("key", "0400")}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.Create(ctx, resource.CreateRequest{Type: "pxe-nbp.entry", Name: "boot", Inputs: resource.Values{JSON: inputs}}, nil)
	if err != nil {
		t.Fatalf("Create: %v", client.ExplainFailure(err))
	}
	if r.Diagnostics.HasError() {
		t.Fatalf("Create: %v", r.Diagnostics.Err())
	}
	v, err := bootentry.Store{Dir: bootDir}.Get(mac)
	if err != nil {
		t.Fatalf("entry after create through the plugin: %v", err)
	}
	var out map[string]string
	if err := json.Unmarshal(r.Outputs.JSON, &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"mac": mac, "scriptPath": "machine/52-54-00-12-34-56.ipxe", "version": v.ID}
	for k, w := range want {
		if out[k] != w {
			t.Errorf("output %s = %q, want %q", k, out[k], w)
		}
	}
	files, _ := unpackExtra(t, v.ExtraPath())
	if files["/etc/ssh/ssh_host_ed25519_key"] != (unpacked{"key", 0o400}) {
		t.Errorf("extra initrd: %+v", files)
	}

	client.Kill()
	if !client.Exited() {
		t.Error("provider still runs after Kill")
	}
}
