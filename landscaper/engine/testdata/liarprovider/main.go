// Command liarprovider is a provider for the engine's tests of promised
// outputs: its type note plans its output digest as the SHA-256 of its
// text while planning, and with lie set returns another value.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

type noteInputs struct {
	Text string `json:"text"`
	Lie  bool   `json:"lie"`
}

type noteOutputs struct {
	Digest string `json:"digest"`
}

func digest(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

func made(in noteInputs) noteOutputs {
	if in.Lie {
		return noteOutputs{Digest: digest(in.Text + " (not what was promised)")}
	}
	return noteOutputs{Digest: digest(in.Text)}
}

func main() {
	sdk.Serve(&sdk.Provider{Name: "liar", Version: "1.0.0", Types: map[string]sdk.Resource{"note": &sdk.Type[noteInputs, noteOutputs]{
		Inputs: []sdk.Attr{
			sdk.String("text", "The note.").Required(),
			sdk.Bool("lie", "Return another digest than the one planned.").Default(false),
		},
		Outputs: []sdk.Attr{sdk.String("digest", "SHA-256 of the note, hex, planned.")},
		Plan: func(_ context.Context, p *sdk.Plan[noteInputs, noteOutputs]) {
			if p.Action != resource.ActionNoop && !p.IsUnknown("text") {
				p.SetKnown(noteOutputs{Digest: digest(p.Desired.Text)}, "digest")
			}
		},
		Create: func(_ context.Context, _ *sdk.Op, in noteInputs) (noteOutputs, error) {
			return made(in), nil
		},
		Update: func(_ context.Context, _ *sdk.Op, _ sdk.State[noteInputs, noteOutputs], in noteInputs) (noteOutputs, error) {
			return made(in), nil
		},
		Read: func(_ context.Context, prior sdk.State[noteInputs, noteOutputs]) (noteOutputs, bool, error) {
			return prior.Outputs, true, nil
		},
	}}})
}
