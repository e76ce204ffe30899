package nixops4_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/nixops4"
	"github.com/landscaper-nix/landscaper/proto/nixops4/schematest"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// Every message the Go types can say follows the published schema.
func TestMessagesFollowTheSchema(t *testing.T) {
	schema := schematest.Load(t)
	extant := nixops4.ExtantResource{Type: "memo", InputProperties: raw(`{"initialize_with":1}`), OutputProperties: raw(`{"value":1}`)}
	requests := map[string]*nixops4.Request{
		"create":          {CreateResourceRequest: &nixops4.CreateResourceRequest{Type: "file", InputProperties: raw(`{"path":"a"}`)}},
		"create stateful": {CreateResourceRequest: &nixops4.CreateResourceRequest{Type: "memo", InputProperties: raw(`{}`), IsStateful: true}},
		"update":          {UpdateResourceRequest: &nixops4.UpdateResourceRequest{Resource: extant, InputProperties: raw(`{"initialize_with":2}`)}},
		"update without outputs": {UpdateResourceRequest: &nixops4.UpdateResourceRequest{
			Resource: nixops4.ExtantResource{Type: "memo", InputProperties: raw(`{}`)}, InputProperties: raw(`{}`)}},
		"state read": {StateResourceReadRequest: &nixops4.StateResourceReadRequest{Resource: extant}},
		"state event": {StateResourceEvent: &nixops4.StateResourceEvent{Resource: extant, Event: "create", NixopsVersion: "4.0.0",
			Patch: raw(`[{"op":"add","path":"/resources/x","value":{}},{"op":"remove","path":"/a"}]`)}},
	}
	for name, req := range requests {
		t.Run("request "+name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := nixops4.Write(&buf, req); err != nil {
				t.Fatal(err)
			}
			schema.Request(t, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
			back, err := nixops4.NewReader(&buf).ReadRequest()
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if back.Kind() != req.Kind() {
				t.Errorf("read back a %s, wrote a %s", back.Kind(), req.Kind())
			}
		})
	}
	responses := map[string]*nixops4.Response{
		"create":      {CreateResourceResponse: &nixops4.CreateResourceResponse{OutputProperties: raw(`{"sha256":"x"}`)}},
		"update":      {UpdateResourceResponse: &nixops4.UpdateResourceResponse{OutputProperties: raw(`{}`)}},
		"state read":  {StateResourceReadResponse: &nixops4.StateResourceReadResponse{State: raw(`{"resources":{}}`)}},
		"state event": {StateResourceEventResponse: &nixops4.StateResourceEventResponse{}},
		"error":       nixops4.Errorf("inputs.%s: required", "path"),
	}
	for name, resp := range responses {
		t.Run("response "+name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := nixops4.Write(&buf, resp); err != nil {
				t.Fatal(err)
			}
			schema.Response(t, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
			back, err := nixops4.NewReader(&buf).ReadResponse()
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if back.Kind() != resp.Kind() {
				t.Errorf("read back a %s, wrote a %s", back.Kind(), resp.Kind())
			}
		})
	}
}

// The schema check is not a formality: messages that break it are refused.
func TestSchemaRefusesBrokenMessages(t *testing.T) {
	schema := schematest.Load(t)
	tests := []struct{ name, definition, doc, want string }{
		{"create without isStateful", "Request", `{"createResourceRequest":{"type":"file","inputProperties":{}}}`, `"isStateful" is required`},
		{"inputs not an object", "Request", `{"createResourceRequest":{"type":"file","inputProperties":[],"isStateful":false}}`, "want object"},
		{"unknown request", "Request", `{"deleteResourceRequest":{}}`, "matches none of oneOf"},
		{"bad patch", "Request", `{"stateResourceEvent":{"resource":{"type":"s","inputProperties":{}},"event":"e","nixopsVersion":"4","patch":[{"op":"frobnicate","path":"/"}]}}`, "matches none"},
		{"error without message", "Response", `{"errorResponse":{}}`, `"message" is required`},
		{"outputs missing", "Response", `{"createResourceResponse":{}}`, `"outputProperties" is required`},
		{"stray field", "Response", `{"createResourceResponse":{"outputProperties":{},"sensitive":["a"]}}`, `"sensitive" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Check(tt.definition, []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// NixOps4's own example messages follow the schema and decode into the Go
// types without loss.
func TestExamples(t *testing.T) {
	schema := schematest.Load(t)
	tests := []struct {
		name string
		into any
	}{
		{"CreateResourceRequest", &nixops4.CreateResourceRequest{}},
		{"CreateResourceResponse", &nixops4.CreateResourceResponse{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			example := schematest.Example(t, tt.name)
			if err := schema.Check(tt.name, example); err != nil {
				t.Fatalf("NixOps4's example does not follow its schema: %v", err)
			}
			dec := json.NewDecoder(bytes.NewReader(example))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.into); err != nil {
				t.Fatalf("decode: %v", err)
			}
			again, _ := json.Marshal(tt.into)
			if !jsonEqual(t, again, example) {
				t.Errorf("re-encoded %s, want %s", again, example)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

func TestReader(t *testing.T) {
	tests := []struct {
		name, input string
		// kinds are the requests read, then the error (by text), if any.
		kinds   []string
		wantErr string
	}{
		{"two lines", `{"createResourceRequest":{"type":"a","inputProperties":{},"isStateful":false}}` + "\n" +
			`{"updateResourceRequest":{"resource":{"type":"a","inputProperties":{}},"inputProperties":{}}}` + "\n",
			[]string{"createResourceRequest", "updateResourceRequest"}, ""},
		{"blank lines skipped", "\n\n" + `{"stateResourceReadRequest":{"resource":{"type":"s","inputProperties":{}}}}` + "\n",
			[]string{"stateResourceReadRequest"}, ""},
		{"not JSON", "hello\n", nil, "bad message"},
		{"two messages in one", `{"createResourceRequest":{"type":"a","inputProperties":{},"isStateful":false},"stateResourceReadRequest":{"resource":{"type":"s","inputProperties":{}}}}` + "\n", nil, "exactly one"},
		{"unknown field", `{"createResourceRequest":{"type":"a","inputProperties":{},"isStateful":false,"name":"x"}}` + "\n", nil, `unknown field "name"`},
		{"cut off", `{"createResourceRequest":{`, nil, "ended within a message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := nixops4.NewReader(strings.NewReader(tt.input))
			for _, want := range tt.kinds {
				req, err := r.ReadRequest()
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if req.Kind() != want {
					t.Fatalf("read a %s, want %s", req.Kind(), want)
				}
			}
			_, err := r.ReadRequest()
			if tt.wantErr == "" {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("after the last message: %v, want io.EOF", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("read: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
