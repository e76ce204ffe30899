package sshkeypair_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestBinary builds the provider binary and drives it as the engine does.
func TestBinary(t *testing.T) {
	client := sdktest.LaunchBinary(t, "github.com/landscaper-nix/landscaper/providers/ssh-keypair/cmd/landscaper-provider-ssh-keypair")
	ctx := context.Background()

	schema, err := client.GetSchema(ctx)
	if err != nil {
		t.Fatalf("GetSchema: %v", err)
	}
	if schema.Name != "ssh-keypair" || schema.Version != "0.1.0" || schema.Types["keypair"] == nil {
		t.Fatalf("schema = %s %s with types %v; want ssh-keypair 0.1.0 with keypair", schema.Name, schema.Version, schema.Types)
	}
	if a, ok := schema.Types["keypair"].Output("privateKey"); !ok || !a.Sensitive {
		t.Errorf("output privateKey = %+v; want it sensitive", a)
	}

	r, err := client.Create(ctx, resource.CreateRequest{Type: "ssh-keypair.keypair", Name: "deployKey",
		Inputs: resource.Values{JSON: []byte(`{"comment":"deployer"}`)}}, nil)
	if err != nil {
		t.Fatalf("Create: %v", client.ExplainFailure(err))
	}
	if r.Diagnostics.HasError() {
		t.Fatalf("Create: %v", r.Diagnostics.Err())
	}
	out := decodeOutputs(t, r.Outputs.JSON)
	if !strings.HasPrefix(out.PublicKey, "ssh-ed25519 ") || !strings.HasSuffix(out.PublicKey, " deployer") || !strings.HasPrefix(out.Fingerprint, "SHA256:") {
		t.Errorf("outputs: publicKey %q, fingerprint %q", out.PublicKey, out.Fingerprint)
	}
	if !slices.ContainsFunc(r.Outputs.Sensitive, func(p resource.Path) bool { return p.String() == "privateKey" }) {
		t.Errorf("sensitive outputs = %v, want privateKey", r.Outputs.Sensitive)
	}

	client.Kill()
	if !client.Exited() {
		t.Error("provider still runs after Kill")
	}
}
