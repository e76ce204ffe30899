package pullload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
)

// errNotMine is an answer that is not the host's own generation: its
// secret does not open with the host's key, or does not name the host.
var errNotMine = errors.New("the answer is not this host's generation")

// agent is one simulated host's agent: the real client, on a connection
// of its own (as each host is a machine of its own), polling only.
type agent struct {
	host      *Host
	client    *pullclient.Client
	transport *http.Transport
	// mine is the last sealed secret found to be the host's own: the
	// same answer again need not be opened again.
	mine string
}

func newAgent(server *Server, h *Host) (*agent, error) {
	c, err := pullclient.New(server.URL, h.Signer, server.Key)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 90 * time.Second}
	c.HTTP = &http.Client{Transport: tr}
	return &agent{host: h, client: c, transport: tr}, nil
}

// poll asks for the host's desired generation (a long-poll with wait >
// 0) and checks that the answer is the host's own: signed by the pinned
// server key for this request (pullclient does that), and carrying the
// secret sealed to this host. It returns the generation.
func (a *agent) poll(ctx context.Context, known int64, wait time.Duration) (int64, error) {
	ans, err := a.client.Desired(ctx, known, wait)
	if err != nil {
		return 0, err
	}
	d := ans.Desired
	if d == nil {
		return 0, fmt.Errorf("%w: no desired generation", errNotMine)
	}
	if len(d.Secrets) != 1 || d.Secrets[0].Path != SecretPath {
		return 0, fmt.Errorf("%w: generation %d has secrets %v", errNotMine, d.Generation, d.Secrets)
	}
	if sealed := d.Secrets[0].Age; sealed != a.mine {
		plain, err := pullsecret.Open(a.host.identity, sealed)
		if err != nil {
			return 0, fmt.Errorf("%w: generation %d: %w", errNotMine, d.Generation, err)
		}
		if string(plain) != a.host.SecretText() {
			return 0, fmt.Errorf("%w: generation %d holds %q", errNotMine, d.Generation, plain)
		}
		a.mine = sealed
	}
	return d.Generation, nil
}

// close drops the agent's connections.
func (a *agent) close() { a.transport.CloseIdleConnections() }
