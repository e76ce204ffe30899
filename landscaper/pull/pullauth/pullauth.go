// Package pullauth signs and checks the pull API's messages with SSH keys:
// each request a host makes is signed with its SSH host key, over the
// method, the request URI, the body's SHA-256, a timestamp and a nonce;
// each answer that tells a host what to run is signed with the server's
// key, over the host, the request's nonce and the body's SHA-256, so an
// answer is good for that one request only.
package pullauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
)

// Header names of a signed request and of a signed answer.
const (
	HeaderHostKey   = "Landscaper-Host-Key"
	HeaderTime      = "Landscaper-Time"
	HeaderNonce     = "Landscaper-Nonce"
	HeaderSignature = "Landscaper-Signature"
	// HeaderServerSignature carries the server's signature of an answer.
	HeaderServerSignature = "Landscaper-Server-Signature"
)

// DefaultMaxSkew is how far a request's timestamp may be from the
// server's clock.
const DefaultMaxSkew = 60 * time.Second

// Reasons a request is refused, as errors (errors.Is) and as the label
// of the server's refusal counter.
var (
	ErrUnsigned     = errors.New("unsigned")
	ErrBadKey       = errors.New("bad-key")
	ErrBadSignature = errors.New("bad-signature")
	ErrStale        = errors.New("stale")
	ErrReplay       = errors.New("replay")
)

// requestText is what a request's signature signs.
func requestText(method, uri string, bodySum [32]byte, unix int64, nonce string) []byte {
	return []byte(strings.Join([]string{"landscaper-pull-v1 request", method, uri, hex.EncodeToString(bodySum[:]), strconv.FormatInt(unix, 10), nonce}, "\n"))
}

// responseText is what an answer's signature signs.
func responseText(hostID, nonce string, bodySum [32]byte) []byte {
	return []byte(strings.Join([]string{"landscaper-pull-v1 response", hostID, nonce, hex.EncodeToString(bodySum[:])}, "\n"))
}

// NewNonce makes a request nonce: 16 random bytes, hex.
func NewNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// SignRequest signs req, whose body is body, with the host key, as of
// now; it returns the nonce, which the answer's signature covers.
func SignRequest(req *http.Request, body []byte, hostKey ssh.Signer, now time.Time) (string, error) {
	nonce, err := NewNonce()
	if err != nil {
		return "", err
	}
	unix := now.Unix()
	sig, err := hostKey.Sign(rand.Reader, requestText(req.Method, req.URL.RequestURI(), sha256.Sum256(body), unix, nonce))
	if err != nil {
		return "", fmt.Errorf("sign the request with the host key: %w", err)
	}
	req.Header.Set(HeaderHostKey, base64.StdEncoding.EncodeToString(hostKey.PublicKey().Marshal()))
	req.Header.Set(HeaderTime, strconv.FormatInt(unix, 10))
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(ssh.Marshal(sig)))
	return nonce, nil
}

// Caller is who signed a request.
type Caller struct {
	Key ssh.PublicKey
	// ID is the host's ID (pulldir.HostID).
	ID    string
	Nonce string
}

// Verifier checks signed requests.
type Verifier struct {
	// MaxSkew bounds the distance of a request's timestamp from now;
	// DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// Claim records a nonce and reports whether it was new; a nonce is
	// kept at least 2*MaxSkew.
	Claim func(id, nonce string, at time.Time, keep time.Duration) (bool, error)
}

// Verify checks r's signature (its body already read into body) as of
// now and returns the caller. The error wraps one of the Err reasons, or
// is the nonce store's own failure.
func (v Verifier) Verify(r *http.Request, body []byte, now time.Time) (Caller, error) {
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	keyB64, ts, nonce, sigB64 := r.Header.Get(HeaderHostKey), r.Header.Get(HeaderTime), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if keyB64 == "" || ts == "" || nonce == "" || sigB64 == "" {
		return Caller{}, ErrUnsigned
	}
	wire, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: host key is not base64", ErrBadKey)
	}
	key, err := ssh.ParsePublicKey(wire)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if key.Type() != ssh.KeyAlgoED25519 {
		return Caller{}, fmt.Errorf("%w: %s, want ssh-ed25519", ErrBadKey, key.Type())
	}
	if len(nonce) != 32 || strings.Trim(nonce, "0123456789abcdef") != "" {
		return Caller{}, fmt.Errorf("%w: nonce is not 32 hex digits", ErrBadSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: timestamp %q", ErrBadSignature, ts)
	}
	rawSig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(rawSig, sig); err != nil {
		return Caller{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := key.Verify(requestText(r.Method, r.RequestURI, sha256.Sum256(body), unix, nonce), sig); err != nil {
		return Caller{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	at := time.Unix(unix, 0)
	if d := now.Sub(at); d > skew || d < -skew {
		return Caller{}, fmt.Errorf("%w: signed at %s, %s from the server's clock (at most %s)", ErrStale, at.UTC().Format(time.RFC3339), d.Round(time.Second), skew)
	}
	id := pulldir.HostID(key)
	fresh, err := v.Claim(id, nonce, at, 2*skew)
	if err != nil {
		return Caller{}, err
	}
	if !fresh {
		return Caller{}, fmt.Errorf("%w: nonce %s was used before", ErrReplay, nonce)
	}
	return Caller{Key: key, ID: id, Nonce: nonce}, nil
}

// SignResponse signs an answer to the request with nonce from host id.
func SignResponse(server ssh.Signer, id, nonce string, body []byte) (string, error) {
	sig, err := server.Sign(rand.Reader, responseText(id, nonce, sha256.Sum256(body)))
	if err != nil {
		return "", fmt.Errorf("sign the answer: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ssh.Marshal(sig)), nil
}

// VerifyResponse checks that the answer body to the request with nonce
// from host id carries the server's signature in header.
func VerifyResponse(server ssh.PublicKey, id, nonce string, body []byte, header string) error {
	if header == "" {
		return errors.New("the answer is not signed")
	}
	raw, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return errors.New("the answer's signature is not base64")
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(raw, sig); err != nil {
		return fmt.Errorf("the answer's signature: %w", err)
	}
	if err := server.Verify(responseText(id, nonce, sha256.Sum256(body)), sig); err != nil {
		return fmt.Errorf("the answer is not signed by the server key %s: %w", ssh.FingerprintSHA256(server), err)
	}
	return nil
}

// ParseServerKey reads the server's public key, given as the contents of
// server.pub (an authorized_keys line) or as the path of that file.
func ParseServerKey(s string) (ssh.PublicKey, error) {
	line := strings.TrimSpace(s)
	if !strings.HasPrefix(line, "ssh-") {
		b, err := os.ReadFile(line)
		if err != nil {
			return nil, fmt.Errorf("server key: %q is neither a key (ssh-ed25519 AAAA...) nor a readable file: %w", s, err)
		}
		line = strings.TrimSpace(string(b))
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return key, nil
}
