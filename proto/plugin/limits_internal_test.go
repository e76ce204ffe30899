package plugin

import (
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// outputsOf are outputs with a string "blob" of n bytes (its JSON takes
// n+2).
func outputsOf(n int) resource.Values {
	return resource.Values{JSON: []byte(`{"small":"x","blob":"` + strings.Repeat("b", n) + `"}`)}
}

// TestFitOperation: the engine's side refuses, as the provider's side
// does, a create or update result that could not be sent back with its
// inputs (a provider built before the limit sends one), and leaves the
// rest alone.
func TestFitOperation(t *testing.T) {
	inputs := &resourcev1.Values{Json: []byte(`{"in":"` + strings.Repeat("i", 20<<20) + `"}`)}
	warning := resource.Diagnostic{Severity: resource.SeverityWarning, Summary: "careful"}
	failure := resource.Diagnostic{Severity: resource.SeverityError, Summary: "it broke"}

	small := &resource.Result{HasState: true, Outputs: outputsOf(1 << 20), Diagnostics: resource.Diagnostics{warning}}
	if got := fitOperation("create", "t.x", "m", inputs, nil, small); got != small {
		t.Errorf("a result that fits was changed: %+v", got)
	}

	big := &resource.Result{HasState: true, Outputs: outputsOf(30 << 20), Diagnostics: resource.Diagnostics{warning}}
	got := fitOperation("create", "t.x", "m", inputs, nil, big)
	if got.HasState || len(got.Outputs.JSON) > 0 || got.Private != nil {
		t.Errorf("a refused result keeps a state: HasState %v, %d bytes of outputs", got.HasState, len(got.Outputs.JSON))
	}
	if len(got.Diagnostics) != 2 || got.Diagnostics[0].Summary != warning.Summary || !got.Diagnostics.HasError() {
		t.Fatalf("a refused result's diagnostics: want the provider's warning and an error, got %v", got.Diagnostics)
	}
	if msg := got.Diagnostics[1].String(); !strings.Contains(msg, "outputs.blob is 30.0 MiB") || !strings.Contains(msg, "64.0 MiB") {
		t.Errorf("the error does not name the output and the limit: %s", msg)
	}

	// A failed create without a state records nothing anyway.
	failed := &resource.Result{Diagnostics: resource.Diagnostics{failure}}
	if got := fitOperation("create", "t.x", "m", inputs, nil, failed); got != failed {
		t.Errorf("a failed create without a state was changed: %+v", got)
	}

	// A failed update keeps the recorded inputs: small ones leave room
	// for outputs that would not fit with the new, large ones.
	priorInputs := &resourcev1.Values{Json: []byte(`{"in":"small"}`)}
	failedUpdate := &resource.Result{HasState: true, Outputs: outputsOf(30 << 20), Diagnostics: resource.Diagnostics{failure}}
	if got := fitOperation("update", "t.x", "m", inputs, priorInputs, failedUpdate); got != failedUpdate {
		t.Errorf("a failed update whose state fits with the recorded inputs was changed: %v", got.Diagnostics)
	}
	bigUpdate := &resource.Result{HasState: true, Outputs: outputsOf(30 << 20)}
	if got := fitOperation("update", "t.x", "m", inputs, priorInputs, bigUpdate); got.HasState || !got.Diagnostics.HasError() {
		t.Errorf("an update whose state does not fit with its new inputs was not refused: %+v", got.Diagnostics)
	}
}

// TestFitRead: a read that reports outputs too large to record is an
// error; one that reports none keeps the recorded outputs, which fit.
func TestFitRead(t *testing.T) {
	prior := &resourcev1.State{Inputs: &resourcev1.Values{Json: []byte(`{}`)}, Outputs: &resourcev1.Values{Json: []byte(`{"a":"b"}`)}}
	none := &resourcev1.ReadResponse{Exists: true}
	if got := fitRead("t.x", "m", prior, none); got != none {
		t.Errorf("a read without outputs was changed: %v", got)
	}
	big := &resourcev1.ReadResponse{Exists: true, Outputs: valuesToProto(outputsOf(70 << 20))}
	got := fitRead("t.x", "m", prior, big)
	if !got.Exists || len(got.Outputs.GetJson()) > 0 || !diagsFromProto(got.Diagnostics).HasError() {
		t.Fatalf("a read with 70 MiB of outputs: want an error and no outputs, got exists %v, %d bytes, %v", got.Exists, len(got.Outputs.GetJson()), got.Diagnostics)
	}
	if msg := diagsFromProto(got.Diagnostics).Err().Error(); !strings.Contains(msg, "result of read too large to record") || !strings.Contains(msg, "outputs.blob is 70.0 MiB") {
		t.Errorf("the error does not say what is too large: %s", msg)
	}
}
