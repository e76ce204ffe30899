// Package pullload puts a pull server under the load of many hosts: it
// makes N simulated hosts (ed25519 host keys), publishes a generation for
// each into a pull directory as nixos.pull does (pulldir.Dir.Publish, with
// a secret sealed to the host's key), and runs one simulated agent per
// host against a real `landscaper serve --pull-dir` process: the real
// client (pullclient), each host on its own connections, every request
// signed, long-polling with wait= and known=. It measures what the
// agents see (latencies, how long a new generation takes to reach them
// all) and what the server process holds (goroutines and memory from its
// /metrics and /proc, CPU time, nonce files).
//
// The agents only poll: they fetch no closure and activate nothing, so
// the desired systems need not exist; a simulated host knows its answer
// is its own by opening the secret in it, which only its key can.
package pullload

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
)

// SecretPath is the path of the one secret every simulated generation
// carries; its contents name the host (SecretText).
const SecretPath = "/run/keys/pullload"

// Host is a simulated host: its host key and what it is called.
type Host struct {
	ID       string
	Signer   ssh.Signer
	identity age.Identity
}

// SecretText is what the secret of the host's generations holds.
func (h *Host) SecretText() string { return "pullload secret of host " + h.ID }

// NewFleet makes n hosts, each with a new ed25519 host key.
func NewFleet(n int) ([]*Host, error) {
	hosts := make([]*Host, n)
	for i := range hosts {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("make host key %d: %w", i, err)
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			return nil, fmt.Errorf("make host key %d: %w", i, err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			return nil, fmt.Errorf("make host key %d: %w", i, err)
		}
		identity, err := pullsecret.Identity(pem.EncodeToMemory(block))
		if err != nil {
			return nil, fmt.Errorf("make host key %d: %w", i, err)
		}
		hosts[i] = &Host{ID: pulldir.HostID(signer.PublicKey()), Signer: signer, identity: identity}
	}
	return hosts, nil
}

// Generations are what to publish for each host (by index), made
// beforehand so that publishing is only the writes.
type Generations []pulldir.Desired

// NewGenerations makes each host's next desired generation: toplevel,
// one health check, and the secret SecretPath sealed to the host's key.
func NewGenerations(hosts []*Host, toplevel string) (Generations, error) {
	gens := make(Generations, len(hosts))
	for i, h := range hosts {
		sealed, err := pullsecret.Seal(h.Signer.PublicKey(), []byte(h.SecretText()))
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.ID, err)
		}
		gens[i] = pulldir.Desired{
			Toplevel:          toplevel,
			HealthChecks:      []pulldir.HealthCheck{{Command: "systemctl is-system-running --wait", Timeout: 60, Retries: 1, Interval: 1}},
			ConfirmTimeout:    30,
			ActivationTimeout: 600,
			Secrets:           []pulldir.Secret{{Path: SecretPath, Mode: "0400", Age: sealed}},
		}
	}
	return gens, nil
}

// Publish writes every host's generation into dir (pulldir.Dir.Publish,
// as nixos.pull does, without the GC root: nothing fetches the closure)
// from workers goroutines at once. It returns, by host, the generation
// written and when its write started.
func Publish(ctx context.Context, dir pulldir.Dir, hosts []*Host, gens Generations, workers int) ([]int64, []time.Time, error) {
	if len(gens) != len(hosts) {
		return nil, nil, fmt.Errorf("publish: %d generations for %d hosts", len(gens), len(hosts))
	}
	generation := make([]int64, len(hosts))
	started := make([]time.Time, len(hosts))
	next := make(chan int)
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				started[i] = time.Now()
				d, err := dir.Publish(hosts[i].Signer.PublicKey(), gens[i])
				generation[i] = d.Generation
				errs[i] = err
			}
		})
	}
	for i := range hosts {
		select {
		case next <- i:
		case <-ctx.Done():
			close(next)
			wg.Wait()
			return nil, nil, ctx.Err()
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("publish: %w", err)
	}
	return generation, started, nil
}
