package nixops4provider_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/nixops4provider"
	"github.com/landscaper-nix/landscaper/proto/nixops4/schematest"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// notes runs testdata/nixops4-notes.py, a provider written to NixOps4's
// protocol, with a transcript of its messages.
func notes(t *testing.T) (*nixops4provider.Client, string, string) {
	t.Helper()
	exe, err := filepath.Abs("testdata/nixops4-notes.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	transcript := filepath.Join(dir, "transcript")
	t.Setenv("NIXOPS4_TRANSCRIPT", transcript)
	c, err := nixops4provider.New(nixops4provider.Spec{
		Name: "notes", Executable: exe, Dir: dir,
		Types: map[string]nixops4provider.Type{
			"file":  {Inputs: []string{"name", "contents"}, Outputs: []string{"size"}},
			"note":  {Inputs: []string{"name", "text"}, Outputs: []string{"revision"}, RequireState: true},
			"crash": {Outputs: []string{}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c, dir, transcript
}

// checkTranscript validates every line both sides wrote against NixOps4's
// published schema.
func checkTranscript(t *testing.T, path string, wantLines int) {
	t.Helper()
	schema := schematest.Load(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		dir, msg, _ := strings.Cut(sc.Text(), " ")
		switch dir {
		case ">":
			schema.Request(t, []byte(msg))
		case "<":
			schema.Response(t, []byte(msg))
		default:
			t.Fatalf("transcript line %q", sc.Text())
		}
		n++
	}
	if n != wantLines {
		t.Errorf("transcript has %d messages, want %d", n, wantLines)
	}
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Log(s string)             { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }
func (l *logLines) Progress(string, float64) {}
func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func values(t *testing.T, v any) resource.Values {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return resource.Values{JSON: b}
}

func hasWarning(ds resource.Diagnostics, part string) bool {
	for _, d := range ds {
		if d.Severity == resource.SeverityWarning && strings.Contains(d.Summary+": "+d.Detail, part) {
			return true
		}
	}
	return false
}

func TestLifecycle(t *testing.T) {
	c, dir, transcript := notes(t)
	ctx := context.Background()
	in1 := values(t, map[string]string{"name": "n.txt", "text": "one"})

	plan, err := c.Plan(ctx, resource.PlanRequest{Type: "notes.note", Name: "n", Desired: in1})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Action != resource.ActionCreate || !hasWarning(plan.Diagnostics, "no delete") {
		t.Fatalf("plan of a new note: %v %v, want create with the protocol's limits as a warning", plan.Action, plan.Diagnostics)
	}
	events := &logLines{}
	res, err := c.Create(ctx, resource.CreateRequest{Type: "notes.note", Name: "n", Inputs: in1}, events)
	if err != nil || res.Diagnostics.HasError() {
		t.Fatalf("create: %v %v", err, res.Diagnostics)
	}
	if string(res.Outputs.JSON) != `{"revision":1}` {
		t.Errorf("outputs %s", res.Outputs.JSON)
	}
	if !strings.Contains(events.String(), "wrote note n.txt") {
		t.Errorf("the provider's stderr did not reach the member's log: %q", events.String())
	}
	st := resource.State{Inputs: in1, Outputs: res.Outputs}

	tests := []struct {
		name   string
		typ    string
		inputs any
		want   resource.Action
	}{
		{"unchanged", "notes.note", map[string]string{"name": "n.txt", "text": "one"}, resource.ActionNoop},
		{"stateful type changed", "notes.note", map[string]string{"name": "n.txt", "text": "two"}, resource.ActionUpdate},
		{"stateless type changed", "notes.file", map[string]string{"name": "f.txt", "contents": "x"}, resource.ActionReplace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.Plan(ctx, resource.PlanRequest{Type: tt.typ, Name: "n", Prior: &st, Desired: values(t, tt.inputs)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Action != tt.want {
				t.Errorf("plan: %v, want %v", p.Action, tt.want)
			}
		})
	}

	res, err = c.Update(ctx, resource.UpdateRequest{Type: "notes.note", Name: "n", Prior: st, Inputs: values(t, map[string]string{"name": "n.txt", "text": "two"})}, nil)
	if err != nil || res.Diagnostics.HasError() {
		t.Fatalf("update: %v %v", err, res.Diagnostics)
	}
	if string(res.Outputs.JSON) != `{"revision":2}` {
		t.Errorf("outputs after the update %s, want revision 2 (from the recorded outputs)", res.Outputs.JSON)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "n.txt")); string(b) != "two" {
		t.Errorf("the note holds %q after the update", b)
	}

	del, err := c.Delete(ctx, resource.DeleteRequest{Type: "notes.note", Name: "n", Prior: st}, nil)
	if err != nil || del.Diagnostics.HasError() || !hasWarning(del.Diagnostics, "left in place") {
		t.Errorf("delete: %v %v, want success with a warning that nothing was deleted", err, del.Diagnostics)
	}
	checkTranscript(t, transcript, 4)
}

func TestErrors(t *testing.T) {
	c, _, transcript := notes(t)
	ctx := context.Background()
	tests := []struct {
		name, typ string
		inputs    any
		want      string
	}{
		{"the provider's error", "notes.file", map[string]any{"name": "/nonexistent/dir/f", "contents": "x"}, "the provider refused the create: [Errno 2]"},
		{"a missing output", "notes.file", map[string]any{"name": "ok.txt", "contents": "x"}, ""},
		{"the provider dies", "notes.crash", map[string]any{}, "exited without answering"},
		{"restarted after dying", "notes.file", map[string]any{"name": "again.txt", "contents": "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Create(ctx, resource.CreateRequest{Type: tt.typ, Name: "m", Inputs: values(t, tt.inputs)}, nil)
			var msg string
			switch {
			case err != nil:
				msg = err.Error()
			case res.Diagnostics.HasError():
				msg = res.Diagnostics.Err().Error()
			}
			if tt.want == "" && msg != "" {
				t.Fatalf("create: %s", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("create: %q, want it to say %q", msg, tt.want)
			}
		})
	}
	ds, _ := c.Validate(ctx, resource.ValidateRequest{Type: "notes.file", Name: "m", Inputs: values(t, map[string]any{"name": "a", "colour": "red"})})
	if !ds.HasError() || ds[0].Attribute.String() != "colour" {
		t.Errorf("an undeclared input: %v, want an error at colour", ds)
	}
	checkTranscript(t, transcript, 7)
}

func TestDeclaredOutputMissing(t *testing.T) {
	exe, _ := filepath.Abs("testdata/nixops4-notes.py")
	c, err := nixops4provider.New(nixops4provider.Spec{Name: "notes", Executable: exe, Dir: t.TempDir(),
		Types: map[string]nixops4provider.Type{"file": {Inputs: []string{"name", "contents"}, Outputs: []string{"size", "sha256"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	res, err := c.Create(context.Background(), resource.CreateRequest{Type: "notes.file", Name: "m", Inputs: values(t, map[string]any{"name": "a", "contents": "b"})}, nil)
	if err != nil || !res.Diagnostics.HasError() || !strings.Contains(res.Diagnostics.Err().Error(), "without sha256") {
		t.Fatalf("create: %v %v, want an error naming the missing output sha256", err, res.Diagnostics)
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	// A provider that never answers.
	exe := filepath.Join(dir, "silent")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := nixops4provider.New(nixops4provider.Spec{Name: "silent", Executable: exe, Types: map[string]nixops4provider.Type{"x": {}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	if _, err := c.Create(ctx, resource.CreateRequest{Type: "silent.x", Name: "m", Inputs: values(t, map[string]any{})}, nil); err == nil {
		t.Fatal("a cancelled create succeeded")
	}
}

func TestSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		spec nixops4provider.Spec
		want string
	}{
		{"no types", nixops4provider.Spec{Name: "p", Executable: "/bin/true"}, "providers.p: a NixOps4 provider needs resourceTypes"},
		{"no executable", nixops4provider.Spec{Name: "p", Types: map[string]nixops4provider.Type{"t": {}}}, "providers.p: an empty executable"},
		{"a dotted type", nixops4provider.Spec{Name: "p", Executable: "x", Types: map[string]nixops4provider.Type{"a.b": {}}}, "providers.p.resourceTypes.a.b"},
		{"an output twice", nixops4provider.Spec{Name: "p", Executable: "x", Types: map[string]nixops4provider.Type{"t": {Outputs: []string{"o", "o"}}}}, "providers.p.resourceTypes.t.outputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := nixops4provider.New(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
