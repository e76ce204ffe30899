package kv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/landscaper-provider-kv/kv"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// TestEntryLifecycle drives kv.entry over a real gRPC connection with
// sdktest: plan, create, a no-op plan, drift seen by Read, update, delete.
func TestEntryLifecycle(t *testing.T) {
	h := sdktest.New(t, kv.Provider())
	store := t.TempDir()
	inputs := map[string]any{"store": store, "key": "greeting", "value": "hello", "secret": "s3cret"}

	p := h.Plan("kv.entry", nil, inputs)
	if p.Action != resource.ActionCreate || p.Diagnostics.HasError() {
		t.Fatalf("plan of a new entry: %v %v", p.Action, p.Diagnostics)
	}
	st, _ := h.Create("kv.entry", inputs)
	out := sdktest.Outputs(t, st)
	if out["revision"] != 1.0 || !strings.HasPrefix(out["token"].(string), "kvtok-") {
		t.Errorf("outputs after create: %v", out)
	}
	if b, err := os.ReadFile(filepath.Join(store, "greeting")); err != nil || string(b) != "hello" {
		t.Fatalf("the entry's file: %q, %v", b, err)
	}

	if p := h.Plan("kv.entry", st, inputs); p.Action != resource.ActionNoop {
		t.Errorf("plan right after create: %v, want no-op", p.Action)
	}

	// Changed behind Landscaper's back: Read sees it, the plan updates.
	if err := os.WriteFile(filepath.Join(store, "greeting"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.Read("kv.entry", st)
	if !r.Exists {
		t.Fatal("Read: the entry does not exist")
	}
	refreshed := &resource.State{Inputs: st.Inputs, Outputs: r.Outputs}
	if p := h.Plan("kv.entry", refreshed, inputs); p.Action != resource.ActionUpdate {
		t.Errorf("plan after tampering: %v, want update", p.Action)
	}
	updated, _ := h.Update("kv.entry", refreshed, inputs)
	if got := sdktest.Outputs(t, updated); got["revision"] != 2.0 || got["token"] != out["token"] {
		t.Errorf("outputs after update: %v (token before: %v)", got, out["token"])
	}

	h.Delete("kv.entry", updated)
	if r := h.Read("kv.entry", updated); r.Exists {
		t.Error("Read after delete: the entry still exists")
	}
}

func TestEntryValidation(t *testing.T) {
	h := sdktest.New(t, kv.Provider())
	tests := []struct {
		name     string
		inputs   map[string]any
		wantPath string
	}{
		{"key with a slash", map[string]any{"store": "s", "key": "a/b", "value": "v"}, "key"},
		{"value too long", map[string]any{"store": "s", "key": "k", "value": "toolong", "maxBytes": 3}, "value"},
		{"fractional limit", map[string]any{"store": "s", "key": "k", "value": "v", "maxBytes": 2.5}, "maxBytes"},
		{"missing value", map[string]any{"store": "s", "key": "k"}, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.Plan("kv.entry", nil, tt.inputs)
			if !p.Diagnostics.HasError() || p.Diagnostics[0].Attribute.String() != tt.wantPath {
				t.Errorf("diagnostics %v, want an error at %s", p.Diagnostics, tt.wantPath)
			}
		})
	}
}

// TestEntryContract runs sdktest's lifecycle: the plan of a new entry,
// create with the outputs the plan knew, a no-op plan, read, delete (twice),
// and gone after it.
func TestEntryContract(t *testing.T) {
	h := sdktest.New(t, kv.Provider())
	h.RunLifecycle(sdktest.Lifecycle{Type: "kv.entry", Inputs: map[string]any{"store": t.TempDir(), "key": "k", "value": "v", "secret": "s"}})
}
