// Package sdktest drives a provider in-process over a real gRPC connection,
// so provider tests exercise the wire protocol without building binaries.
package sdktest

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/proto/plugin"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Harness talks to one provider.
type Harness struct {
	t        testing.TB
	Provider resource.Provider
	Schema   *resource.ProviderSchema
}

// checker is a provider that can check its own declarations, as
// *sdk.Provider can.
type checker interface{ Check() error }

// New serves p in-process and connects to it. A provider whose
// declarations are broken (see sdk.Provider.Check) fails the test.
func New(t testing.TB, p resource.Provider) *Harness {
	t.Helper()
	if c, ok := p.(checker); ok {
		if err := c.Check(); err != nil {
			t.Fatalf("provider declarations: %v", err)
		}
	}
	client := plugin.InProcess(t, p)
	schema, err := client.GetSchema(context.Background())
	if err != nil {
		t.Fatalf("GetSchema: %v", err)
	}
	return &Harness{t: t, Provider: client, Schema: schema}
}

// Events records what an operation streamed.
type Events struct {
	mu               sync.Mutex
	Logs             []string
	ProgressMessages []string
}

// Log records a line.
func (e *Events) Log(text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Logs = append(e.Logs, text)
}

// Progress records a progress message.
func (e *Events) Progress(message string, _ float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ProgressMessages = append(e.ProgressMessages, message)
}

// JSON encodes v for a request, failing the test if it cannot.
func (h *Harness) JSON(v any) json.RawMessage {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatalf("encode %v: %v", v, err)
	}
	return b
}

// Plan asks for the plan of a resource with the given prior state (nil for
// a new one) and desired inputs.
func (h *Harness) Plan(typ string, prior *resource.State, inputs any, unknown ...resource.Path) *resource.PlanResponse {
	h.t.Helper()
	r, err := h.Provider.Plan(context.Background(), resource.PlanRequest{Type: typ, Name: "test", Prior: prior, Desired: resource.Values{JSON: h.JSON(inputs)}, Unknown: unknown})
	if err != nil {
		h.t.Fatalf("Plan %s: %v", typ, err)
	}
	return r
}

// Create creates a resource and returns its recorded state. It fails the
// test on error diagnostics; use Provider.Create to inspect them.
func (h *Harness) Create(typ string, inputs any) (*resource.State, *Events) {
	h.t.Helper()
	ev := &Events{}
	in := resource.Values{JSON: h.JSON(inputs)}
	r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: typ, Name: "test", Inputs: in}, ev)
	if err != nil {
		h.t.Fatalf("Create %s: %v", typ, err)
	}
	if r.Diagnostics.HasError() {
		h.t.Fatalf("Create %s: %v", typ, r.Diagnostics.Err())
	}
	return &resource.State{Inputs: in, Outputs: r.Outputs, Private: r.Private, SchemaVersion: r.SchemaVersion}, ev
}

// Update updates a resource and returns its new state.
func (h *Harness) Update(typ string, prior *resource.State, inputs any) (*resource.State, *Events) {
	h.t.Helper()
	ev := &Events{}
	in := resource.Values{JSON: h.JSON(inputs)}
	r, err := h.Provider.Update(context.Background(), resource.UpdateRequest{Type: typ, Name: "test", Prior: *prior, Inputs: in}, ev)
	if err != nil {
		h.t.Fatalf("Update %s: %v", typ, err)
	}
	if r.Diagnostics.HasError() {
		h.t.Fatalf("Update %s: %v", typ, r.Diagnostics.Err())
	}
	return &resource.State{Inputs: in, Outputs: r.Outputs, Private: r.Private, SchemaVersion: r.SchemaVersion}, ev
}

// Delete deletes a resource.
func (h *Harness) Delete(typ string, prior *resource.State) *Events {
	h.t.Helper()
	return h.delete(typ, prior, false)
}

// DeleteReplacing deletes a resource as the first half of a replacement,
// as the engine does before it creates the resource again.
func (h *Harness) DeleteReplacing(typ string, prior *resource.State) *Events {
	h.t.Helper()
	return h.delete(typ, prior, true)
}

func (h *Harness) delete(typ string, prior *resource.State, replacing bool) *Events {
	h.t.Helper()
	ev := &Events{}
	r, err := h.Provider.Delete(context.Background(), resource.DeleteRequest{Type: typ, Name: "test", Prior: *prior, Replacing: replacing}, ev)
	if err != nil {
		h.t.Fatalf("Delete %s: %v", typ, err)
	}
	if r.Diagnostics.HasError() {
		h.t.Fatalf("Delete %s: %v", typ, r.Diagnostics.Err())
	}
	return ev
}

// Read reads a resource.
func (h *Harness) Read(typ string, prior *resource.State) *resource.ReadResponse {
	h.t.Helper()
	r, err := h.Provider.Read(context.Background(), resource.ReadRequest{Type: typ, Name: "test", Prior: *prior})
	if err != nil {
		h.t.Fatalf("Read %s: %v", typ, err)
	}
	return r
}

// Outputs decodes a state's outputs into a map.
func Outputs(t testing.TB, s *resource.State) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(s.Outputs.JSON, &m); err != nil {
		t.Fatalf("decode outputs %s: %v", s.Outputs.JSON, err)
	}
	return m
}

// LaunchBinary builds the provider command at importPath (e.g.
// ".../providers/local/cmd/landscaper-provider-local") and launches it as
// the engine does, over go-plugin with AutoMTLS. The plugin is killed when
// the test ends.
func LaunchBinary(t testing.TB, importPath string) *plugin.Client {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building a provider needs the go tool: %v", err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(importPath))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, importPath).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", importPath, err, out)
	}
	client, err := plugin.Launch(ctx, bin, plugin.LaunchOptions{})
	if err != nil {
		t.Fatalf("launch %s: %v", bin, err)
	}
	t.Cleanup(client.Kill)
	return client
}
