package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// BenchmarkPlanNoop measures a provider's plan of a file whose inputs and
// outputs did not change: what a no-op plan of many files costs.
func BenchmarkPlanNoop(b *testing.B) {
	dir := b.TempDir()
	p := Provider()
	ctx := context.Background()
	name := filepath.Join(dir, "f1")
	if err := os.WriteFile(name, []byte("member 1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	inputs := []byte(fmt.Sprintf(`{"contents":"member 1\n","name":%q}`, name))
	prior := &resource.State{
		Inputs:  resource.Values{JSON: inputs},
		Outputs: resource.Values{JSON: []byte(fmt.Sprintf(`{"sha256":"21d996731ed8dc6f78cb198fe8132adb66fdfc245b6a7264028bfae9f866f981","path":%q}`, name))},
	}
	req := resource.PlanRequest{Type: "file", Name: "f1", Prior: prior, Desired: resource.Values{JSON: inputs}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Plan(ctx, req)
		if err != nil || resp.Action != resource.ActionNoop {
			b.Fatalf("plan: %v %+v", err, resp)
		}
	}
}

// BenchmarkReadUnchanged measures a refresh of a file nobody changed.
func BenchmarkReadUnchanged(b *testing.B) {
	dir := b.TempDir()
	p := Provider()
	ctx := context.Background()
	name := filepath.Join(dir, "f1")
	if err := os.WriteFile(name, []byte("member 1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	inputs := []byte(fmt.Sprintf(`{"contents":"member 1\n","name":%q}`, name))
	prior := resource.State{
		Inputs:  resource.Values{JSON: inputs},
		Outputs: resource.Values{JSON: []byte(fmt.Sprintf(`{"sha256":"21d996731ed8dc6f78cb198fe8132adb66fdfc245b6a7264028bfae9f866f981","path":%q}`, name))},
	}
	req := resource.ReadRequest{Type: "file", Name: "f1", Prior: prior}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Read(ctx, req)
		if err != nil || resp.Diagnostics.HasError() {
			b.Fatalf("read: %v %+v", err, resp)
		}
	}
}
