package testprovider_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

const itemType = "testkit.item"

func inputs(path, behaviour string, delayMs int) map[string]any {
	return map[string]any{"path": path, "behaviour": behaviour, "delayMs": delayMs}
}

func TestSchema(t *testing.T) {
	h := sdktest.New(t, testprovider.Provider())
	if h.Schema.Name != "testkit" || h.Schema.Types["item"] == nil {
		t.Fatalf("schema = %s with types %v; want testkit with item", h.Schema.Name, h.Schema.Types)
	}
	ts := h.Schema.Types["item"]
	if a, ok := ts.Input("path"); !ok || !a.Required {
		t.Errorf("input path = %+v; want required", a)
	}
	if a, ok := ts.Input("behaviour"); !ok || string(a.Default) != `"ok"` {
		t.Errorf("input behaviour = %+v; want default \"ok\"", a)
	}
	if a, ok := ts.Input("delayMs"); !ok || string(a.Default) != `0` {
		t.Errorf("input delayMs = %+v; want default 0", a)
	}
	if _, ok := ts.Output("id"); !ok {
		t.Errorf("no output id")
	}
}

func TestLifecycle(t *testing.T) {
	h := sdktest.New(t, testprovider.Provider())
	path := filepath.Join(t.TempDir(), "sub", "item")
	st, _ := h.Create(itemType, map[string]any{"path": path})
	if got, err := os.ReadFile(path); err != nil || string(got) != path {
		t.Fatalf("file = %q, %v; want its own path", got, err)
	}
	if got := sdktest.Outputs(t, st)["id"]; got != testprovider.ID(path) {
		t.Errorf("id = %v, want %s", got, testprovider.ID(path))
	}
	if r := h.Read(itemType, st); !r.Exists || r.Diagnostics.HasError() {
		t.Errorf("Read of an existing item: exists %v, %v", r.Exists, r.Diagnostics.Err())
	}
	h.Delete(itemType, st)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file still there after Delete: %v", err)
	}
	if r := h.Read(itemType, st); r.Exists {
		t.Errorf("Read of a deleted item says it exists")
	}
	// Deleting what is gone succeeds.
	h.Delete(itemType, st)
	// A create that was interrupted before it wrote anything reads as
	// absent.
	interrupted := &resource.State{Inputs: resource.Values{JSON: h.JSON(map[string]any{"path": path})}}
	if r := h.Read(itemType, interrupted); r.Exists {
		t.Errorf("Read of an item never made says it exists")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestSlow(t *testing.T) {
	h := sdktest.New(t, testprovider.Provider())
	path := filepath.Join(t.TempDir(), "slow")
	h.Create(itemType, inputs(path, testprovider.BehaviourSlow, 50))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("slow item not written: %v", err)
	}
}

func TestPanic(t *testing.T) {
	h := sdktest.New(t, testprovider.Provider())
	path := filepath.Join(t.TempDir(), "boom")
	r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: itemType, Name: "boom", Inputs: resource.Values{JSON: h.JSON(inputs(path, testprovider.BehaviourPanic, 0))}}, nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "panicked") {
		t.Fatalf("Create of a panicking item: diagnostics %v; want an error saying it panicked", r.Diagnostics)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a panicking item wrote its file: %v", err)
	}
}

// TestHang: a hanging create returns once its context is cancelled, having
// written nothing.
func TestHang(t *testing.T) {
	h := sdktest.New(t, testprovider.Provider())
	path := filepath.Join(t.TempDir(), "hang")
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		r   *resource.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := h.Provider.Create(ctx, resource.CreateRequest{Type: itemType, Name: "hang", Inputs: resource.Values{JSON: h.JSON(inputs(path, testprovider.BehaviourHang, 0))}}, nil)
		done <- outcome{r, err}
	}()
	select {
	case o := <-done:
		t.Fatalf("a hanging create returned before it was cancelled: %+v, %v", o.r, o.err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case o := <-done:
		if o.err == nil && !o.r.Diagnostics.HasError() {
			t.Errorf("a cancelled hanging create succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a hanging create did not return after it was cancelled")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a hanging item wrote its file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	h := sdktest.New(t, testprovider.Provider())
	for _, tc := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"path": "x", "behaviour": "explode"}, "unknown behaviour"},
		{map[string]any{"path": ""}, "empty path"},
		{map[string]any{"path": "x", "delayMs": -1}, "negative delay"},
		{map[string]any{"behaviour": "ok"}, "missing required input"},
	} {
		diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: itemType, Name: "v", Inputs: resource.Values{JSON: h.JSON(tc.in)}})
		if err != nil {
			t.Fatal(err)
		}
		if !diags.HasError() || !strings.Contains(diags.Err().Error(), tc.want) {
			in, _ := json.Marshal(tc.in)
			t.Errorf("Validate %s: %v; want an error %q", in, diags, tc.want)
		}
	}
	for _, b := range []string{"ok", "panic", "exit", "hang", "slow", "stuck", "hangPlan", "exitPlan", "hangRead"} {
		diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: itemType, Name: "v", Inputs: resource.Values{JSON: h.JSON(inputs("x", b, 10))}})
		if err != nil || diags.HasError() {
			t.Errorf("Validate behaviour %s: %v %v", b, diags, err)
		}
	}
}

// TestHangPlanAndRead: a "hangPlan" item's plan and a "hangRead" item's
// read write their marker, block until cancelled, then fail.
func TestHangPlanAndRead(t *testing.T) {
	tests := []struct {
		name      string
		behaviour string
		marker    string
		call      func(ctx context.Context, h *sdktest.Harness, in json.RawMessage) error
	}{
		{
			name: "plan", behaviour: testprovider.BehaviourHangPlan, marker: "planning",
			call: func(ctx context.Context, h *sdktest.Harness, in json.RawMessage) error {
				r, err := h.Provider.Plan(ctx, resource.PlanRequest{Type: itemType, Name: "x", Desired: resource.Values{JSON: in}})
				if err == nil {
					err = r.Diagnostics.Err()
				}
				return err
			},
		},
		{
			name: "read", behaviour: testprovider.BehaviourHangRead, marker: "reading",
			call: func(ctx context.Context, h *sdktest.Harness, in json.RawMessage) error {
				r, err := h.Provider.Read(ctx, resource.ReadRequest{Type: itemType, Name: "x", Prior: resource.State{Inputs: resource.Values{JSON: in}}})
				if err == nil {
					err = r.Diagnostics.Err()
				}
				return err
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sdktest.New(t, testprovider.Provider())
			path := filepath.Join(t.TempDir(), "item")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.call(ctx, h, h.JSON(inputs(path, tc.behaviour, 0))) }()
			marker := testprovider.Marker(path, tc.marker)
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(marker); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no marker %s after 30s", marker)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("the %s returned before it was cancelled: %v", tc.name, err)
			default:
			}
			cancel()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("a cancelled hanging %s succeeded", tc.name)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("a hanging %s did not return after it was cancelled", tc.name)
			}
		})
	}
}
