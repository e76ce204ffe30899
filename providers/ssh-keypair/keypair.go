package sshkeypair

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// keypairInputs are the inputs of ssh-keypair.keypair.
type keypairInputs struct {
	Algorithm string `json:"algorithm"`
	// Bits is nil when not given: the algorithm's default applies. It is a
	// float so that a fractional number reaches Validate (and gets an error
	// on "bits") instead of failing to decode.
	Bits    *float64 `json:"bits,omitempty"`
	Comment string   `json:"comment"`
}

// keypairOutputs are the outputs of ssh-keypair.keypair.
type keypairOutputs struct {
	PublicKey   string `json:"publicKey"`
	PrivateKey  string `json:"privateKey"`
	Fingerprint string `json:"fingerprint"`
}

func keypairType() *sdk.Type[keypairInputs, keypairOutputs] {
	return &sdk.Type[keypairInputs, keypairOutputs]{
		Description: "An SSH key pair, generated once and kept until the resource is replaced.",
		Inputs: []sdk.Attr{
			sdk.String("algorithm", `Key algorithm: "ed25519", "ecdsa" or "rsa". A change replaces the key.`).Default(algoEd25519).ForceNew(),
			sdk.Number("bits", "Key size: for ecdsa 256 (default), 384 or 521; for rsa at least 2048 and at most 16384 (default 4096); not set for ed25519. A change replaces the key.").ForceNew(),
			sdk.String("comment", "Comment of the key, in the public key line and the private key. A change updates both without new key material.").Default(""),
		},
		Outputs: []sdk.Attr{
			sdk.String("publicKey", `The public key as an authorized_keys line, "ssh-ed25519 AAAA... comment", without a newline.`),
			// The private key holds the comment; the key material changes
			// only with a replacement.
			sdk.String("privateKey", "The private key in OpenSSH format (-----BEGIN OPENSSH PRIVATE KEY-----), unencrypted.").Sensitive().KeepPrior("comment"),
			sdk.String("fingerprint", `The SHA256 fingerprint as ssh-keygen -l prints it, "SHA256:..."`).KeepPrior(),
		},
		Validate: validateKeypair,
		// The default size spelled out (or left out again) is the same key.
		ReplaceIf: map[string]func(prior, desired keypairInputs) bool{
			"bits": func(prior, desired keypairInputs) bool {
				return prior.Algorithm != desired.Algorithm || effectiveBits(prior) != effectiveBits(desired)
			},
		},
		Plan:   planKeypair,
		Create: createKeypair,
		Update: updateKeypair,
		Delete: deleteKeypair,
		Read:   readKeypair,
	}
}

// validateKeypair checks the algorithm, the size for it and the comment.
// Inputs not known yet are not judged, nor a size whose algorithm is not
// known yet.
func validateKeypair(in keypairInputs, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	algoPath, bitsPath, commentPath := resource.AttrPath("algorithm"), resource.AttrPath("bits"), resource.AttrPath("comment")
	algoKnown := !resource.Covered(algoPath, unknown)
	if algoKnown {
		switch in.Algorithm {
		case algoEd25519, algoECDSA, algoRSA:
		default:
			diags = append(diags, resource.Error(algoPath, "unknown key algorithm",
				"algorithm must be %q, %q or %q, got %q", algoEd25519, algoECDSA, algoRSA, in.Algorithm))
			algoKnown = false // the size cannot be judged
		}
	}
	if !resource.Covered(bitsPath, unknown) && in.Bits != nil {
		b := *in.Bits
		switch {
		case b != math.Trunc(b) || math.IsInf(b, 0):
			diags = append(diags, resource.Error(bitsPath, "invalid key size", "bits must be a whole number, got %v", b))
		case !algoKnown:
		case in.Algorithm == algoEd25519:
			diags = append(diags, resource.Error(bitsPath, "key size not allowed", "ed25519 keys have a fixed size; leave bits unset (got %v)", b))
		case in.Algorithm == algoECDSA && b != 256 && b != 384 && b != 521:
			diags = append(diags, resource.Error(bitsPath, "invalid ecdsa key size", "ecdsa needs bits 256, 384 or 521, got %v", b))
		case in.Algorithm == algoRSA && b < minRSABits:
			diags = append(diags, resource.Error(bitsPath, "rsa key too small", "rsa needs at least %d bits, got %v", minRSABits, b))
		case in.Algorithm == algoRSA && b > maxRSABits:
			diags = append(diags, resource.Error(bitsPath, "rsa key too large", "rsa allows at most %d bits, got %v", maxRSABits, b))
		}
	}
	if !resource.Covered(commentPath, unknown) && strings.ContainsAny(in.Comment, "\r\n\x00") {
		diags = append(diags, resource.Error(commentPath, "invalid comment",
			"the comment ends up on the public key's line, so it must not contain a line break or NUL"))
	}
	return diags
}

// effectiveBits is the key size the inputs ask for, defaults resolved; 0
// when the algorithm is unknown.
func effectiveBits(in keypairInputs) int {
	if in.Bits != nil {
		return int(*in.Bits)
	}
	switch in.Algorithm {
	case algoEd25519:
		return ed25519Bits
	case algoECDSA:
		return defaultECDSABits
	case algoRSA:
		return defaultRSABits
	}
	return 0
}

// planKeypair plans, for an update, the public key line: the recorded
// key with the new comment. The SDK keeps the fingerprint and, with the
// comment unchanged, the private key (KeepPrior), and lets the default
// size spelled out through as an update (ReplaceIf).
func planKeypair(_ context.Context, p *sdk.Plan[keypairInputs, keypairOutputs]) {
	if p.Action != resource.ActionUpdate || p.IsUnknown("comment") {
		return
	}
	line, err := withComment(p.Prior.Outputs.PublicKey, p.Desired.Comment)
	if err != nil {
		return
	}
	p.SetKnown(keypairOutputs{PublicKey: line}, "publicKey")
}

// createKeypair generates the key material.
func createKeypair(ctx context.Context, op *sdk.Op, in keypairInputs) (keypairOutputs, error) {
	bits := effectiveBits(in)
	op.Progress(fmt.Sprintf("generating %s key", describe(in.Algorithm, bits)), -1)
	key, err := generateKey(ctx, in.Algorithm, bits)
	if err != nil {
		return keypairOutputs{}, err
	}
	out, err := keyOutputs(key, in.Comment)
	if err != nil {
		return keypairOutputs{}, err
	}
	op.Logf("generated %s key %s", describe(in.Algorithm, bits), out.Fingerprint)
	return out, nil
}

// updateKeypair writes the recorded key again with the new comment. The
// key material stays; with the comment unchanged (only the spelling of the
// size changed) the outputs stay exactly as they were.
func updateKeypair(_ context.Context, op *sdk.Op, prior sdk.State[keypairInputs, keypairOutputs], in keypairInputs) (keypairOutputs, error) {
	if !prior.HasOutputs {
		return keypairOutputs{}, errors.New("no key recorded to update; replace the resource")
	}
	key, err := parsePrivateKey(prior.Outputs.PrivateKey)
	if err != nil {
		return keypairOutputs{}, fmt.Errorf("recorded key %s: %w", prior.Outputs.Fingerprint, err)
	}
	if in.Comment == prior.Inputs.Comment {
		op.Logf("key %s unchanged", prior.Outputs.Fingerprint)
		return prior.Outputs, nil
	}
	out, err := keyOutputs(key, in.Comment)
	if err != nil {
		return keypairOutputs{}, err
	}
	if prior.Outputs.Fingerprint != "" && out.Fingerprint != prior.Outputs.Fingerprint {
		return keypairOutputs{}, fmt.Errorf("recorded private key has fingerprint %s, but %s is recorded; replace the resource", out.Fingerprint, prior.Outputs.Fingerprint)
	}
	op.Logf("set the comment of key %s", out.Fingerprint)
	return out, nil
}

// deleteKeypair has nothing to remove: the key lives only in the engine's
// state, which forgets it.
func deleteKeypair(_ context.Context, op *sdk.Op, prior sdk.State[keypairInputs, keypairOutputs]) error {
	if prior.Outputs.Fingerprint != "" {
		op.Logf("forgetting key %s", prior.Outputs.Fingerprint)
	}
	return nil
}

// readKeypair reports the key as existing when the recorded private key is
// there and can be read; its outputs are the recorded ones.
func readKeypair(_ context.Context, prior sdk.State[keypairInputs, keypairOutputs]) (keypairOutputs, bool, error) {
	if !prior.HasOutputs {
		return keypairOutputs{}, false, nil
	}
	if _, err := parsePrivateKey(prior.Outputs.PrivateKey); err != nil {
		return keypairOutputs{}, false, nil
	}
	return prior.Outputs, true, nil
}

// describe names a key kind for log lines: "ed25519", "ecdsa 384-bit".
func describe(algorithm string, bits int) string {
	if algorithm == algoEd25519 {
		return algoEd25519
	}
	return fmt.Sprintf("%s %d-bit", algorithm, bits)
}
