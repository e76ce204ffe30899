package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/plugin"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

const localProvider = "github.com/landscaper-nix/landscaper/providers/local/cmd/landscaper-provider-local"

// The local provider binary, built once for the tests that launch it.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// launchLocal launches the local provider as the engine does; it is
// killed when the test ends.
func launchLocal(t *testing.T) *plugin.Client {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "landscaper-plugin-test-")
		if buildErr != nil {
			return
		}
		var out []byte
		out, buildErr = exec.Command("go", "build", "-o", binDir+"/", localProvider).CombinedOutput()
		if buildErr != nil {
			buildErr = fmt.Errorf("go build %s: %w\n%s", localProvider, buildErr, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	c, err := plugin.Launch(ctx, filepath.Join(binDir, filepath.Base(localProvider)), plugin.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bigExec are the inputs of a local.exec whose stdout is n bytes of "a",
// after reading (and dropping) stdin.
func bigExec(t *testing.T, n int, stdin string) resource.Values {
	t.Helper()
	script := "cat >/dev/null; head -c " + strconv.Itoa(n) + " /dev/zero | tr '\\0' a"
	return resource.Values{JSON: mustJSON(t, map[string]any{"executable": "sh", "args": []string{"-c", script}, "stdin": stdin})}
}

// errorText joins the error diagnostics.
func errorText(ds resource.Diagnostics) string {
	var parts []string
	for _, d := range ds {
		if d.Severity == resource.SeverityError {
			parts = append(parts, d.String())
		}
	}
	return strings.Join(parts, "; ")
}

// TestLargeStateRoundTrip: a create whose output is 5 MB (more than
// gRPC's default 4 MiB) through a launched local provider is recorded, and
// the state goes back to the provider in a plan, an update, a read and a
// delete. Before the limits were set on both sides, the provider accepted
// at most 4 MiB, so every call after the create failed with
// "received message larger than max".
func TestLargeStateRoundTrip(t *testing.T) {
	t.Parallel()
	p := launchLocal(t)
	ctx := context.Background()
	const size = 5_000_000
	in := bigExec(t, size, "")
	res, err := p.Create(ctx, resource.CreateRequest{Type: "local.exec", Name: "big", Inputs: in}, nil)
	if err != nil {
		t.Fatalf("create with a 5 MB stdout: %v", err)
	}
	if res.Diagnostics.HasError() {
		t.Fatalf("create with a 5 MB stdout: %s", errorText(res.Diagnostics))
	}
	var out struct{ Stdout string }
	if err := json.Unmarshal(res.Outputs.JSON, &out); err != nil || len(out.Stdout) != size {
		t.Fatalf("create's stdout is %d bytes (%v), want %d", len(out.Stdout), err, size)
	}
	prior := resource.State{Inputs: in, Outputs: res.Outputs, Private: res.Private}
	plan, err := p.Plan(ctx, resource.PlanRequest{Type: "local.exec", Name: "big", Prior: &prior, Desired: in})
	if err != nil {
		t.Fatalf("plan with the 5 MB state: %v", err)
	}
	if plan.Diagnostics.HasError() {
		t.Fatalf("plan with the 5 MB state: %s", errorText(plan.Diagnostics))
	}
	if plan.Action != resource.ActionNoop {
		t.Errorf("plan of unchanged inputs: action %v, want noop", plan.Action)
	}
	in2 := bigExec(t, size+1, "")
	upd, err := p.Update(ctx, resource.UpdateRequest{Type: "local.exec", Name: "big", Prior: prior, Inputs: in2}, nil)
	if err != nil {
		t.Fatalf("update of the 5 MB state: %v", err)
	}
	if upd.Diagnostics.HasError() {
		t.Fatalf("update of the 5 MB state: %s", errorText(upd.Diagnostics))
	}
	prior = resource.State{Inputs: in2, Outputs: upd.Outputs, Private: upd.Private}
	read, err := p.Read(ctx, resource.ReadRequest{Type: "local.exec", Name: "big", Prior: prior})
	if err != nil {
		t.Fatalf("read of the 5 MB state: %v", err)
	}
	if read.Diagnostics.HasError() || !read.Exists {
		t.Fatalf("read of the 5 MB state: exists %v, %s", read.Exists, errorText(read.Diagnostics))
	}
	del, err := p.Delete(ctx, resource.DeleteRequest{Type: "local.exec", Name: "big", Prior: prior}, nil)
	if err != nil {
		t.Fatalf("delete of the 5 MB state: %v", err)
	}
	if del.Diagnostics.HasError() {
		t.Fatalf("delete of the 5 MB state: %s", errorText(del.Diagnostics))
	}
}

// TestOversizedResultNotRecorded: a create whose state, sent back with
// its inputs, would not fit in plugin.MaxMessageSize (30 MiB of stdin and
// 15 MiB of stdout) is refused by the provider's side with an error that
// names the largest attribute and the limit, and carries no state, so the
// engine records nothing.
func TestOversizedResultNotRecorded(t *testing.T) {
	t.Parallel()
	p := launchLocal(t)
	in := bigExec(t, 15<<20, strings.Repeat("s", 30<<20))
	res, err := p.Create(context.Background(), resource.CreateRequest{Type: "local.exec", Name: "big", Inputs: in}, nil)
	if err != nil {
		t.Fatalf("create: want a result with an error diagnostic, got the error %v", err)
	}
	if res.HasState || len(res.Outputs.JSON) > 0 {
		t.Errorf("an oversized create result carries a state (%d bytes of outputs): the engine would record it", len(res.Outputs.JSON))
	}
	msg := errorText(res.Diagnostics)
	t.Logf("create's error: %s", msg)
	for _, want := range []string{"result of create too large to record", "inputs.stdin is 30.0 MiB", "at most 64.0 MiB", "not recorded"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
}

// TestOversizedRequestNotSent: a recorded state larger than
// plugin.MaxMessageSize (as an older landscaper could record) is not sent
// to the provider: plan and delete answer with an error diagnostic that
// says what to do (`landscaper state rm`), the connection stays usable,
// and the engine knows the provider did nothing.
func TestOversizedRequestNotSent(t *testing.T) {
	t.Parallel()
	p := launchLocal(t)
	ctx := context.Background()
	in := bigExec(t, 1, "")
	prior := resource.State{Inputs: in, Outputs: resource.Values{JSON: []byte(`{"stdout":"` + strings.Repeat("a", plugin.MaxMessageSize+1) + `"}`)}}
	plan, err := p.Plan(ctx, resource.PlanRequest{Type: "local.exec", Name: "grp.big", Prior: &prior, Desired: in})
	if err != nil {
		t.Fatalf("plan with an oversized state: want an error diagnostic, got the error %v", err)
	}
	del, err := p.Delete(ctx, resource.DeleteRequest{Type: "local.exec", Name: "grp.big", Prior: prior}, nil)
	if err != nil {
		t.Fatalf("delete with an oversized state: want an error diagnostic, got the error %v", err)
	}
	for call, diags := range map[string]resource.Diagnostics{"plan": plan.Diagnostics, "delete": del.Diagnostics} {
		msg := errorText(diags)
		t.Logf("%s's error: %s", call, msg)
		for _, want := range []string{"request too large", "nothing was sent", "outputs.stdout is 67108867 bytes", "at most 64.0 MiB", "landscaper state rm grp.big"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: the error does not say %q: %s", call, want, msg)
			}
		}
	}
	if p.Exited() {
		t.Fatal("the provider exited")
	}
	small, err := p.Plan(ctx, resource.PlanRequest{Type: "local.exec", Name: "small", Desired: in})
	if err != nil {
		t.Fatalf("a plan after the refused ones failed: %v", err)
	}
	if small.Diagnostics.HasError() {
		t.Errorf("a plan after the refused ones failed: %s", errorText(small.Diagnostics))
	}
}
