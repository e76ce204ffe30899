package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// recordingSink keeps what an operation logs.
type recordingSink struct{ lines []string }

func (r *recordingSink) Log(text string)                    { r.lines = append(r.lines, text) }
func (r *recordingSink) Progress(message string, _ float64) { r.lines = append(r.lines, message) }

const secretLine = "QyNTUxOQAAACDxY0Zb3n2pQkTjQ5x1b2rYv0ZL7o0bnqkq8p6a2o1ZTwAAAJgrAJb+KwCW"

var secretKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" + secretLine + "\n-----END OPENSSH PRIVATE KEY-----\n"

func sensitiveInputs(t *testing.T) resource.Values {
	t.Helper()
	doc, err := json.Marshal(map[string]any{"args": []string{"-c", "x", secretKey}, "executable": "sh"})
	if err != nil {
		t.Fatal(err)
	}
	return resource.Values{JSON: doc, Sensitive: []resource.Path{resource.AttrPath("args").Index(2)}}
}

// showsPiece reports a piece of the secret line, 5 bytes long, in text.
func showsPiece(text string) (string, bool) {
	for i := 0; i+5 <= len(secretLine); i++ {
		if strings.Contains(text, secretLine[i:i+5]) {
			return secretLine[i : i+5], true
		}
	}
	return "", false
}

// A long line cut by LineLog never shows a piece of a secret, wherever the
// cut falls and however the writes are sized.
func TestLineLogCutsAfterRedacting(t *testing.T) {
	const maxLine = 256
	for pad := maxLine - len(secretLine) - 2; pad <= maxLine+2; pad++ {
		for _, chunk := range []int{1, 7, 64, 1 << 20} {
			sink := &recordingSink{}
			op := newOp("local.exec", "m", sink, sensitiveInputs(t))
			log := NewLineLog(op, maxLine, 3)
			stream := strings.Repeat("x", pad) + secretLine + strings.Repeat("y", 300) + "\nlast\n"
			for i := 0; i < len(stream); i += chunk {
				_, _ = log.Write([]byte(stream[i:min(len(stream), i+chunk)]))
			}
			log.Flush()
			for _, line := range append(sink.lines, log.Tail()) {
				if piece, ok := showsPiece(line); ok {
					t.Fatalf("pad %d, writes of %d: line %q shows %q", pad, chunk, line, piece)
				}
			}
			if got := strings.Join(sink.lines, ""); !strings.Contains(got, "(sensitive)") || !strings.Contains(got, "last") {
				t.Fatalf("pad %d, writes of %d: the lines lost text: %q", pad, chunk, got)
			}
		}
	}
}

func TestOpRedactsLogsAndErrors(t *testing.T) {
	sink := &recordingSink{}
	typ := &Type[struct {
		Executable string   `json:"executable"`
		Args       []string `json:"args"`
	}, struct{}]{
		Inputs: []Attr{String("executable", "e").Required(), List("args", "string", "a")},
		Create: func(_ context.Context, op *Op, in struct {
			Executable string   `json:"executable"`
			Args       []string `json:"args"`
		}) (struct{}, error) {
			op.Logf("running with %s", in.Args[2])
			op.Progress("at "+secretLine, 0.5)
			return struct{}{}, errors.New("failed; stderr:\n" + in.Args[2])
		},
	}
	res, err := typ.create(context.Background(), resource.CreateRequest{Type: "local.exec", Name: "m", Inputs: sensitiveInputs(t)}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Diagnostics.HasError() {
		t.Fatal("the failed create has no error diagnostic")
	}
	texts := append([]string{}, sink.lines...)
	for _, d := range res.Diagnostics {
		texts = append(texts, d.Summary, d.Detail)
	}
	for _, text := range texts {
		if piece, ok := showsPiece(text); ok {
			t.Errorf("%q shows %q of the secret", text, piece)
		}
	}
	if !strings.Contains(res.Diagnostics[0].Summary, "(sensitive)") {
		t.Errorf("the error does not say where the secret was: %q", res.Diagnostics[0].Summary)
	}
}
