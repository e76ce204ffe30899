package sshkeypair

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The algorithms a key pair can use.
const (
	algoEd25519 = "ed25519"
	algoECDSA   = "ecdsa"
	algoRSA     = "rsa"
)

// Key sizes, in bits.
const (
	defaultECDSABits = 256
	defaultRSABits   = 4096
	minRSABits       = 2048
	// maxRSABits is the largest modulus golang.org/x/crypto/ssh reads back
	// (and the largest ssh-keygen makes), so a bigger key could not be
	// updated or read.
	maxRSABits = 16384
	// ed25519Bits is what ssh-keygen -l reports for an ed25519 key.
	ed25519Bits = 256
)

// errKeyType is returned for a private key of a kind this provider does not
// make. It names the Go type only, never the key.
var errKeyType = errors.New("not an ed25519, ecdsa or rsa private key")

// generateKey makes new key material with crypto/rand. bits is the size
// already resolved for the algorithm (ignored for ed25519). RSA generation
// can take long for big keys, so it gives up when ctx ends (the computation
// itself finishes in the background and is dropped).
func generateKey(ctx context.Context, algorithm string, bits int) (crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("generate %s key: %w", algorithm, err)
	}
	switch algorithm {
	case algoEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		return priv, nil
	case algoECDSA:
		curve, err := curveFor(bits)
		if err != nil {
			return nil, err
		}
		priv, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ecdsa %d key: %w", bits, err)
		}
		return priv, nil
	case algoRSA:
		if bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("rsa key size %d is outside %d..%d", bits, minRSABits, maxRSABits)
		}
		type result struct {
			key *rsa.PrivateKey
			err error
		}
		done := make(chan result, 1)
		go func() {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			done <- result{k, err}
		}()
		select {
		case r := <-done:
			if r.err != nil {
				return nil, fmt.Errorf("generate rsa %d key: %w", bits, r.err)
			}
			return r.key, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("generate rsa %d key: %w", bits, ctx.Err())
		}
	}
	return nil, fmt.Errorf("unknown algorithm %q", algorithm)
}

func curveFor(bits int) (elliptic.Curve, error) {
	switch bits {
	case 256:
		return elliptic.P256(), nil
	case 384:
		return elliptic.P384(), nil
	case 521:
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("no ecdsa curve of %d bits (want 256, 384 or 521)", bits)
}

// keyOutputs renders a private key as the resource's outputs, with comment
// in both the public key line and the private key file.
func keyOutputs(key crypto.Signer, comment string) (keypairOutputs, error) {
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return keypairOutputs{}, fmt.Errorf("encode public key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(key, comment)
	if err != nil {
		return keypairOutputs{}, fmt.Errorf("encode private key: %w", err)
	}
	return keypairOutputs{
		PublicKey:   authorizedLine(pub, comment),
		PrivateKey:  string(pem.EncodeToMemory(block)),
		Fingerprint: ssh.FingerprintSHA256(pub),
	}, nil
}

// authorizedLine is the authorized_keys line of pub, as ssh-keygen -y
// prints it: "type base64" and, when there is one, a space and the comment;
// no newline.
func authorizedLine(pub ssh.PublicKey, comment string) string {
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
	if comment != "" {
		line += " " + comment
	}
	return line
}

// parsePrivateKey reads a private key in OpenSSH format back. Its errors
// describe what is wrong, never the key's contents.
func parsePrivateKey(text string) (crypto.Signer, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("no private key recorded")
	}
	raw, err := ssh.ParseRawPrivateKey([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		return *k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("parse private key: %w (got %T)", errKeyType, raw)
}

// withComment replaces the comment of an authorized_keys line.
func withComment(line, comment string) (string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", fmt.Errorf("parse public key: %w", err)
	}
	return authorizedLine(pub, comment), nil
}
