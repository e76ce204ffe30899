package local_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// printBytes are local.exec inputs whose command writes n bytes of "a"
// to stdout.
func printBytes(n int) map[string]any {
	return map[string]any{"executable": "sh", "args": []string{"-c", "head -c " + strconv.Itoa(n) + " /dev/zero | tr '\\0' a"}}
}

// TestExecStdoutLimit: local.exec records up to 16 MiB of stdout, over a
// real gRPC connection; one byte more is an error that names the output
// and the limit, with no state, so nothing is recorded; so is an update's.
func TestExecStdoutLimit(t *testing.T) {
	t.Parallel()
	const limit = 16 << 20
	h := newHarness(t)
	s, _ := h.Create("local.exec", printBytes(limit))
	if got := sdktest.Outputs(t, s)["stdout"].(string); len(got) != limit || strings.Trim(got, "a") != "" {
		t.Fatalf("stdout of 16 MiB: got %d bytes", len(got))
	}

	checkRefused := func(t *testing.T, op string, res *resource.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if strings.Contains(string(res.Outputs.JSON), "aaaa") {
			t.Errorf("%s: the refused stdout is in the result's outputs (%d bytes)", op, len(res.Outputs.JSON))
		}
		msg := res.Diagnostics.Err()
		if msg == nil {
			t.Fatalf("%s of a command writing 16 MiB and 1 byte succeeded", op)
		}
		for _, want := range []string{"more than 16 MiB", "outputs.stdout", "nothing was recorded"} {
			if !strings.Contains(msg.Error(), want) {
				t.Errorf("%s: the error does not say %q: %v", op, want, msg)
			}
		}
	}
	over := resource.Values{JSON: h.JSON(printBytes(limit + 1))}
	res, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: "local.exec", Name: "big", Inputs: over}, nil)
	checkRefused(t, "create", res, err)
	if err == nil && res.HasState {
		t.Errorf("create: a refused result has a state: the engine would record it")
	}
	prior, _ := h.Create("local.exec", printBytes(3))
	res, err = h.Provider.Update(context.Background(), resource.UpdateRequest{Type: "local.exec", Name: "big", Prior: *prior, Inputs: over}, nil)
	checkRefused(t, "update", res, err)
	if err == nil && res.HasState && string(res.Outputs.JSON) != string(prior.Outputs.JSON) {
		t.Errorf("update: a refused result has other outputs than the prior ones: %s", res.Outputs.JSON)
	}
}
