// Package pullclient is a host's side of the pull API: requests signed
// with the host key, answers checked against the pinned server key, and a
// loopback proxy through which the host's Nix reaches its binary cache.
package pullclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

// Client talks to one pull server as one host.
type Client struct {
	// Server is the server's base URL ("http://10.0.0.1:8069"); the API
	// is under its /pull/v1/.
	Server string
	// HostKey signs every request; it names the host.
	HostKey ssh.Signer
	// ServerKey is the pinned key the server's answers must be signed
	// with.
	ServerKey ssh.PublicKey
	// HTTP makes the requests; http.DefaultClient when nil.
	HTTP *http.Client
}

// New checks the server URL and makes a client.
func New(server string, hostKey ssh.Signer, serverKey ssh.PublicKey) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port][/path]", server)
	}
	if hostKey.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("host key: type %s, want ssh-ed25519", hostKey.PublicKey().Type())
	}
	return &Client{Server: strings.TrimSuffix(server, "/"), HostKey: hostKey, ServerKey: serverKey}, nil
}

// ID is the host's ID.
func (c *Client) ID() string { return pulldir.HostID(c.HostKey.PublicKey()) }

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// StatusError is an answer other than the one asked for.
type StatusError struct {
	Path   string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: server answered %d: %s", e.Path, e.Status, e.Body)
}

// Do sends a signed request for path (with its query) and returns the
// answer and the request's nonce. A status of 400 or more is a
// *StatusError.
func (c *Client) Do(ctx context.Context, hc *http.Client, method, path string, body []byte) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, bytes.NewReader(body))
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	nonce, err := pullauth.SignRequest(req, body, c.HostKey, time.Now())
	if err != nil {
		return nil, "", err
	}
	if hc == nil {
		hc = c.http()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, "", &StatusError{Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return resp, nonce, nil
}

// ErrBadAnswer is an answer the agent must not act on: unsigned, or not
// signed by the pinned server key, or not for this request.
var ErrBadAnswer = errors.New("refused the server's answer")

// Desired fetches the host's desired generation. With wait > 0 the server
// holds the request until the generation is other than known, or wait
// has passed. The answer's signature is checked against the pinned key.
func (c *Client) Desired(ctx context.Context, known int64, wait time.Duration) (pullapi.DesiredAnswer, error) {
	return c.desired(ctx, c.http(), known, wait)
}

// Confirm reaches the server over a new connection and checks that the
// server answers with its signature: proof, after an activation, that
// the new system can still reach it.
func (c *Client) Confirm(ctx context.Context) error {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment}
	defer tr.CloseIdleConnections()
	_, err := c.desired(ctx, &http.Client{Transport: tr}, -1, 0)
	return err
}

func (c *Client) desired(ctx context.Context, hc *http.Client, known int64, wait time.Duration) (pullapi.DesiredAnswer, error) {
	var answer pullapi.DesiredAnswer
	path := pullapi.DesiredPath(c.ID())
	if wait > 0 {
		path += "?wait=" + strconv.Itoa(int(wait/time.Second)) + "&known=" + strconv.FormatInt(max(known, 0), 10)
	}
	resp, nonce, err := c.Do(ctx, hc, http.MethodGet, path, nil)
	if err != nil {
		return answer, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return answer, fmt.Errorf("read the desired generation: %w", err)
	}
	if err := pullauth.VerifyResponse(c.ServerKey, c.ID(), nonce, body, resp.Header.Get(pullauth.HeaderServerSignature)); err != nil {
		return answer, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return answer, fmt.Errorf("decode the desired generation: %w", err)
	}
	return answer, nil
}

// Report sends a report of the host's last cycle.
func (c *Client) Report(ctx context.Context, r pulldir.Report) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	resp, _, err := c.Do(ctx, nil, http.MethodPost, pullapi.ReportPath(c.ID()), body)
	if err != nil {
		return fmt.Errorf("send the report: %w", err)
	}
	resp.Body.Close()
	return nil
}

// Enroll makes the host a host of the role, proving with the role's
// token (which is not sent: only a proof made with it). A host already
// in the role is enrolled again without error.
func (c *Client) Enroll(ctx context.Context, role, token string) error {
	body, err := json.Marshal(pullapi.EnrollRequest{Proof: pullauth.EnrollProof(pullauth.EnrollKey(token), role, c.ID())})
	if err != nil {
		return err
	}
	resp, _, err := c.Do(ctx, nil, http.MethodPost, pullapi.EnrollPath(role), body)
	if err != nil {
		return fmt.Errorf("enroll in role %s: %w", role, err)
	}
	resp.Body.Close()
	return nil
}

// IsUnknownHost reports whether err is the server's refusal of a host it
// does not know (not declared, not enrolled yet).
func IsUnknownHost(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusForbidden && strings.Contains(se.Body, "unknown host")
}
