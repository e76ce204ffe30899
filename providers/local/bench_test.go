package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// benchFile writes one file as local.file would have and returns its
// recorded state.
func benchFile(b *testing.B) resource.State {
	b.Helper()
	name := filepath.Join(b.TempDir(), "f1")
	if err := os.WriteFile(name, []byte("member 1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return resource.State{
		Inputs:  resource.Values{JSON: []byte(fmt.Sprintf(`{"contents":"member 1\n","name":%q}`, name))},
		Outputs: resource.Values{JSON: []byte(fmt.Sprintf(`{"sha256":"21d996731ed8dc6f78cb198fe8132adb66fdfc245b6a7264028bfae9f866f981","path":%q}`, name))},
	}
}

// BenchmarkPlanNoop measures a provider's plan of a file whose inputs and
// outputs did not change: what a no-op plan of many files costs.
func BenchmarkPlanNoop(b *testing.B) {
	prior := benchFile(b)
	p := Provider()
	req := resource.PlanRequest{Type: "file", Name: "f1", Prior: &prior, Desired: prior.Inputs}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Plan(context.Background(), req)
		if err != nil || resp.Action != resource.ActionNoop {
			b.Fatalf("plan: %v %+v", err, resp)
		}
	}
}

// BenchmarkReadUnchanged measures a refresh of a file nobody changed.
func BenchmarkReadUnchanged(b *testing.B) {
	p := Provider()
	req := resource.ReadRequest{Type: "file", Name: "f1", Prior: benchFile(b)}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.Read(context.Background(), req)
		if err != nil || resp.Diagnostics.HasError() || !resp.Exists {
			b.Fatalf("read: %v %+v", err, resp)
		}
	}
}
