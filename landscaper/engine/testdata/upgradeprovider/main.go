// Command upgradeprovider is a provider for the engine's tests of schema
// versions: its type note is at version 1, whose upgrade renamed the
// output "hash" (version 0) to "digest".
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/landscaper-nix/landscaper/providers/sdk"
)

type noteInputs struct {
	Text string `json:"text"`
}

type noteOutputs struct {
	Digest string `json:"digest"`
}

func digest(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

func main() {
	sdk.Serve(&sdk.Provider{Name: "vers", Version: "1.0.0", Types: map[string]sdk.Resource{"note": &sdk.Type[noteInputs, noteOutputs]{
		Inputs:  []sdk.Attr{sdk.String("text", "The note.").Required()},
		Outputs: []sdk.Attr{sdk.String("digest", "SHA-256 of the note, hex.")},
		Version: 1,
		Upgrade: func(_ context.Context, from int, prior sdk.RawState) (sdk.RawState, error) {
			if v, ok := prior.Outputs["hash"]; ok && from == 0 {
				prior.Outputs["digest"] = v
				delete(prior.Outputs, "hash")
			}
			return prior, nil
		},
		Create: func(_ context.Context, _ *sdk.Op, in noteInputs) (noteOutputs, error) {
			return noteOutputs{Digest: digest(in.Text)}, nil
		},
		Update: func(_ context.Context, _ *sdk.Op, _ sdk.State[noteInputs, noteOutputs], in noteInputs) (noteOutputs, error) {
			return noteOutputs{Digest: digest(in.Text)}, nil
		},
		// What exists is what the text makes; a note recorded without
		// its digest (not upgraded) would show as changed outside.
		Read: func(_ context.Context, prior sdk.State[noteInputs, noteOutputs]) (noteOutputs, bool, error) {
			return noteOutputs{Digest: digest(prior.Inputs.Text)}, true, nil
		},
	}}})
}
