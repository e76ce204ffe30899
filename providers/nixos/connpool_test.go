package nixos

import (
	"context"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// TestConnPool: a kept connection goes only to the same target (another
// login key, user or sudo setting gets none), only while it answers, and
// not after idleFor.
func TestConnPool(t *testing.T) {
	login, other := testhost.NewKeyPair(t), testhost.NewKeyPair(t)
	h := testhost.Start(t, testhost.Options{AuthorizedKeys: login.Public + "\n"})
	target := remote.Target{Address: h.Address, Port: h.Port, User: "root", HostKey: h.HostPublicKey(), PrivateKey: login.Private}
	dial := func() *remote.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := remote.Dial(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := newConnPool()
	c := dial()
	p.put(c)
	for _, tt := range []struct {
		name   string
		change func(*remote.Target)
	}{
		{"another login key", func(t *remote.Target) { t.PrivateKey = other.Private }},
		{"another user", func(t *remote.Target) { t.User = "deploy" }},
		{"sudo", func(t *remote.Target) { t.Sudo = true }},
		{"another port", func(t *remote.Target) { t.Port++ }},
	} {
		other := target
		tt.change(&other)
		if got := p.take(other); got != nil {
			t.Errorf("%s: take gave the kept connection", tt.name)
		}
	}
	if got := p.take(target); got != c {
		t.Fatalf("take of the same target gave %v, want the kept connection", got)
	}
	if got := p.take(target); got != nil {
		t.Errorf("a connection was handed out twice")
	}
	c.Close()
	p.put(c)
	if got := p.take(target); got != nil {
		t.Errorf("a closed connection was handed out")
	}
	c2 := dial()
	p.put(c2)
	p.idleFor = 0
	if got := p.take(target); got != nil {
		t.Errorf("a connection idle for longer than idleFor was handed out")
	}
}
