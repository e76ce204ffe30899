package sdk_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// failures records a test's failures instead of failing it; Fatalf ends
// the goroutine, as testing's does.
type failures struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (f *failures) Helper() {}

func (f *failures) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *failures) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

type boxInputs struct {
	Name string `json:"name"`
}

type boxOutputs struct {
	Label string `json:"label"`
}

// boxProvider keeps boxes in a map; broken makes one of its promises
// false.
func boxProvider(broken string) *sdk.Provider {
	var mu sync.Mutex
	boxes := map[string]bool{}
	return &sdk.Provider{Name: "box", Types: map[string]sdk.Resource{"box": &sdk.Type[boxInputs, boxOutputs]{
		Inputs:  []sdk.Attr{sdk.String("name", "").Required()},
		Outputs: []sdk.Attr{sdk.String("label", "")},
		Plan: func(_ context.Context, p *sdk.Plan[boxInputs, boxOutputs]) {
			if p.Action == resource.ActionCreate {
				p.SetKnown(boxOutputs{Label: "box " + p.Desired.Name}, "label")
			}
			if broken == "never a no-op" && p.Action == resource.ActionNoop {
				p.Action = resource.ActionUpdate
			}
		},
		Create: func(_ context.Context, _ *sdk.Op, in boxInputs) (boxOutputs, error) {
			mu.Lock()
			defer mu.Unlock()
			boxes[in.Name] = true
			if broken == "other label than planned" {
				return boxOutputs{Label: "crate " + in.Name}, nil
			}
			return boxOutputs{Label: "box " + in.Name}, nil
		},
		Delete: func(_ context.Context, _ *sdk.Op, prior sdk.State[boxInputs, boxOutputs]) error {
			mu.Lock()
			defer mu.Unlock()
			if broken == "second delete fails" && !boxes[prior.Inputs.Name] {
				return fmt.Errorf("no box %s", prior.Inputs.Name)
			}
			if broken != "delete leaves it" {
				delete(boxes, prior.Inputs.Name)
			}
			return nil
		},
		Read: func(_ context.Context, prior sdk.State[boxInputs, boxOutputs]) (boxOutputs, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			out := prior.Outputs
			if broken == "read relabels" {
				out.Label = "relabelled"
			}
			return out, boxes[prior.Inputs.Name], nil
		},
	}}}
}

func TestRunLifecycle(t *testing.T) {
	tests := []struct {
		broken string
		want   string // part of the first failure; "" for none
	}{
		{broken: "", want: ""},
		{broken: "other label than planned", want: "output label is not what the plan said it would be"},
		{broken: "never a no-op", want: "the plan right after create: update"},
		{broken: "read relabels", want: "Read right after create reports other outputs than Create"},
		{broken: "second delete fails", want: "Delete box.box"},
		{broken: "delete leaves it", want: "Read after delete still finds the resource"},
	}
	for _, tt := range tests {
		t.Run(tt.broken, func(t *testing.T) {
			f := &failures{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h := sdktest.New(f, boxProvider(tt.broken))
				h.RunLifecycle(sdktest.Lifecycle{Type: "box.box", Inputs: map[string]any{"name": "a"}})
			}()
			<-done
			if tt.want == "" {
				if len(f.msgs) > 0 {
					t.Errorf("a sound provider failed: %q", f.msgs)
				}
				return
			}
			if len(f.msgs) == 0 || !strings.Contains(f.msgs[0], tt.want) {
				t.Errorf("failures %q, want the first to say %q", f.msgs, tt.want)
			}
		})
	}
}
