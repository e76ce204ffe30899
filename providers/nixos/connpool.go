package nixos

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// connPool keeps the SSH connection a refresh (Read) made to a host, for
// the create or update of the same run that follows it: a fleet apply
// then logs in to each host once fewer (each login costs the host a new
// sshd process and the deployer a key exchange). A connection is only
// handed out to the same target (address, port, user, pinned host key,
// login key, sudo), at most idleFor after it was put back, and only
// while it still answers. The activation's confirmation always uses a
// new connection of its own, never one from here.
type connPool struct {
	idleFor time.Duration
	mu      sync.Mutex
	idle    map[string]pooledConn
}

type pooledConn struct {
	c     *remote.Client
	since time.Time
}

func newConnPool() *connPool {
	return &connPool{idleFor: time.Minute, idle: map[string]pooledConn{}}
}

// poolKey identifies a target; the login key only by its hash.
func poolKey(t remote.Target) string {
	return fmt.Sprintf("%s|%d|%s|%s|%t|%x", t.Address, t.Port, t.User, t.HostKey, t.Sudo, sha256.Sum256([]byte(t.PrivateKey)))
}

// take returns a live pooled connection to t, or nil.
func (p *connPool) take(t remote.Target) *remote.Client {
	if p == nil {
		return nil
	}
	key := poolKey(t)
	p.mu.Lock()
	pc, ok := p.idle[key]
	delete(p.idle, key)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	if time.Since(pc.since) > p.idleFor || !pc.c.Alive(5*time.Second) {
		pc.c.Close()
		return nil
	}
	return pc.c
}

// put keeps c for the next take of its target (closing one kept before),
// and closes connections idle for too long.
func (p *connPool) put(c *remote.Client) {
	if p == nil {
		c.Close()
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	key := poolKey(c.Target())
	if old, ok := p.idle[key]; ok {
		old.c.Close()
	}
	p.idle[key] = pooledConn{c: c, since: now}
	for k, pc := range p.idle {
		if now.Sub(pc.since) > p.idleFor {
			pc.c.Close()
			delete(p.idle, k)
		}
	}
}
