package nixops4_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wire "github.com/landscaper-nix/landscaper/proto/nixops4"
	"github.com/landscaper-nix/landscaper/proto/nixops4/schematest"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/nixops4"
)

type noteIn struct {
	Dir  string `json:"dir"`
	Name string `json:"name"`
	Text string `json:"text"`
}

type noteOut struct {
	Path    string `json:"path"`
	Length  int    `json:"length"`
	Version int    `json:"version"`
}

type secretIn struct {
	Dir string `json:"dir"`
}

type secretOut struct {
	Token string `json:"token"`
}

// testProvider is a real SDK provider: "note" writes a file (name forces
// a replacement, text is updated in place); "secret" has a sensitive
// output and writes a marker file when it is created.
func testProvider() *sdk.Provider {
	write := func(in noteIn, version int) (noteOut, error) {
		p := filepath.Join(in.Dir, in.Name)
		if err := os.WriteFile(p, []byte(in.Text), 0o644); err != nil {
			return noteOut{}, err
		}
		return noteOut{Path: p, Length: len(in.Text), Version: version}, nil
	}
	note := &sdk.Type[noteIn, noteOut]{
		Description: "a note in a file",
		Inputs: []sdk.Attr{
			sdk.String("dir", "").Required().ForceNew(),
			sdk.String("name", "").Required().ForceNew(),
			sdk.String("text", "").Required(),
		},
		Outputs: []sdk.Attr{sdk.String("path", ""), sdk.Integer("length", ""), sdk.Integer("version", "")},
		// NixOps4 records no schema version: what it sends back was
		// written at the current one and must not be upgraded.
		Version: 1,
		Upgrade: func(context.Context, int, sdk.RawState) (sdk.RawState, error) {
			return sdk.RawState{}, errors.New("state sent by NixOps4 was upgraded")
		},
		Create: func(_ context.Context, op *sdk.Op, in noteIn) (noteOut, error) {
			op.Logf("writing %s", in.Name)
			return write(in, 1)
		},
		Update: func(_ context.Context, _ *sdk.Op, prior sdk.State[noteIn, noteOut], in noteIn) (noteOut, error) {
			return write(in, prior.Outputs.Version+1)
		},
		Delete: func(_ context.Context, _ *sdk.Op, prior sdk.State[noteIn, noteOut]) error {
			err := os.Remove(prior.Outputs.Path)
			if os.IsNotExist(err) {
				return nil
			}
			return err
		},
	}
	secret := &sdk.Type[secretIn, secretOut]{
		Inputs:  []sdk.Attr{sdk.String("dir", "").Required()},
		Outputs: []sdk.Attr{sdk.String("token", "").Sensitive()},
		Create: func(_ context.Context, _ *sdk.Op, in secretIn) (secretOut, error) {
			return secretOut{Token: "s3cr3t"}, os.WriteFile(filepath.Join(in.Dir, "made"), nil, 0o644)
		},
	}
	return &sdk.Provider{Name: "test", Version: "1", Types: map[string]sdk.Resource{"note": note, "secret": secret}}
}

// session runs Serve on pipes and speaks to it, checking every message
// against NixOps4's schema.
type session struct {
	t      *testing.T
	schema *schematest.Schema
	in     *io.PipeWriter
	out    *wire.Reader
	log    *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func start(t *testing.T) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, schema: schematest.Load(t), in: inW, out: wire.NewReader(outR), log: &syncBuffer{mu: make(chan struct{}, 1)}, done: make(chan error, 1)}
	go func() {
		err := nixops4.Serve(context.Background(), testProvider(), inR, outW, s.log)
		outW.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		if err := <-s.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// send writes a raw request line and reads the response.
func (s *session) sendLine(line string) *wire.Response {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
	resp, err := s.out.ReadResponse()
	if err != nil {
		s.t.Fatalf("read response: %v", err)
	}
	b, _ := json.Marshal(resp)
	s.schema.Response(s.t, b)
	return resp
}

func (s *session) send(req *wire.Request) *wire.Response {
	s.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		s.t.Fatal(err)
	}
	s.schema.Request(s.t, b)
	return s.sendLine(string(b))
}

func jsonOf(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func create(t *testing.T, typ string, inputs any) *wire.Request {
	return &wire.Request{CreateResourceRequest: &wire.CreateResourceRequest{Type: typ, InputProperties: jsonOf(t, inputs), IsStateful: true}}
}

func update(t *testing.T, typ string, priorIn any, priorOut json.RawMessage, inputs any) *wire.Request {
	return &wire.Request{UpdateResourceRequest: &wire.UpdateResourceRequest{
		Resource:        wire.ExtantResource{Type: typ, InputProperties: jsonOf(t, priorIn), OutputProperties: priorOut},
		InputProperties: jsonOf(t, inputs),
	}}
}

func outputsOf(t *testing.T, resp *wire.Response) (json.RawMessage, noteOut) {
	t.Helper()
	var raw json.RawMessage
	switch {
	case resp.CreateResourceResponse != nil:
		raw = resp.CreateResourceResponse.OutputProperties
	case resp.UpdateResourceResponse != nil:
		raw = resp.UpdateResourceResponse.OutputProperties
	default:
		t.Fatalf("got %s, want outputs: %+v", resp.Kind(), resp.ErrorResponse)
	}
	var out noteOut
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return raw, out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateAndUpdate(t *testing.T) {
	s := start(t)
	dir := t.TempDir()
	in := map[string]string{"dir": dir, "name": "a.txt", "text": "one"}

	raw, out := outputsOf(t, s.send(create(t, "note", in)))
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "one" {
		t.Fatalf("after create the file holds %q", got)
	}
	if out != (noteOut{Path: filepath.Join(dir, "a.txt"), Length: 3, Version: 1}) {
		t.Fatalf("create outputs %s", raw)
	}
	if !strings.Contains(s.log.String(), "test.note: writing a.txt") {
		t.Errorf("the operation's log line is not on stderr: %q", s.log.String())
	}

	tests := []struct {
		name    string
		inputs  map[string]string
		want    noteOut
		file    string
		oldGone string
	}{
		{"same inputs: nothing done", in, out, "one", ""},
		{"text changed: updated in place", map[string]string{"dir": dir, "name": "a.txt", "text": "three"}, noteOut{filepath.Join(dir, "a.txt"), 5, 2}, "three", ""},
		{"name changed: replaced", map[string]string{"dir": dir, "name": "b.txt", "text": "three"}, noteOut{filepath.Join(dir, "b.txt"), 5, 1}, "three", filepath.Join(dir, "a.txt")},
	}
	prevIn, prevOut := any(in), raw
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, got := outputsOf(t, s.send(update(t, "test.note", prevIn, prevOut, tt.inputs)))
			if got != tt.want {
				t.Fatalf("outputs %s, want %+v", raw, tt.want)
			}
			if content := readFile(t, tt.want.Path); content != tt.file {
				t.Errorf("the file holds %q, want %q", content, tt.file)
			}
			if tt.oldGone != "" {
				if _, err := os.Stat(tt.oldGone); !os.IsNotExist(err) {
					t.Errorf("the replaced resource's file %s is still there (%v)", tt.oldGone, err)
				}
			}
			prevIn, prevOut = tt.inputs, raw
		})
	}
}

func TestRefusals(t *testing.T) {
	s := start(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		line string
		// want are parts of the error message.
		want []string
	}{
		{"missing input", string(jsonOf(t, create(t, "note", map[string]string{"dir": dir, "name": "x"}))),
			[]string{"test.note", "inputs.text"}},
		{"unknown input", string(jsonOf(t, create(t, "note", map[string]string{"dir": dir, "name": "x", "text": "t", "colour": "red"}))),
			[]string{"test.note", "inputs.colour"}},
		{"wrong input type", string(jsonOf(t, create(t, "note", map[string]any{"dir": dir, "name": "x", "text": 3}))),
			[]string{"test.note", "inputs.text"}},
		{"unknown type", string(jsonOf(t, create(t, "nothing", map[string]string{}))),
			[]string{`no resource type "nothing"`, "note, secret"}},
		{"sensitive outputs", string(jsonOf(t, create(t, "secret", map[string]string{"dir": dir}))),
			[]string{"test.secret", "token", "sensitive", "nothing was made"}},
		{"state provider request", `{"stateResourceReadRequest":{"resource":{"type":"note","inputProperties":{}}}}`,
			[]string{"not a NixOps4 state provider", "stateResourceReadRequest"}},
		{"not JSON", `hello`, []string{"bad message"}},
		{"inputs not an object", `{"createResourceRequest":{"type":"note","inputProperties":[1],"isStateful":false}}`,
			[]string{"inputProperties must be a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.sendLine(tt.line)
			if resp.ErrorResponse == nil {
				t.Fatalf("got %s, want an errorResponse", resp.Kind())
			}
			for _, w := range tt.want {
				if !strings.Contains(resp.ErrorResponse.Message, w) {
					t.Errorf("error %q does not say %q", resp.ErrorResponse.Message, w)
				}
			}
			if strings.Contains(resp.ErrorResponse.Message, "s3cr3t") {
				t.Errorf("error %q holds the secret", resp.ErrorResponse.Message)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		t.Errorf("refused requests made %v", names)
	}
	// The session still serves after all of that.
	if _, out := outputsOf(t, s.send(create(t, "note", map[string]string{"dir": dir, "name": "ok", "text": "fine"}))); out.Version != 1 {
		t.Errorf("create after the refusals: %+v", out)
	}
}
