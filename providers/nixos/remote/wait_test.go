package remote_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// TestDialRefusedFor: a host that refuses connections (an sshd that is
// reloading, here one not started yet) is tried again until it answers,
// within the grace given; past it, the refusal is the error; a wrong host
// key is not tried again.
func TestDialRefusedFor(t *testing.T) {
	login, hostKey := testhost.NewKeyPair(t), testhost.NewKeyPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Run("answers within the grace", func(t *testing.T) {
		port := testhost.FreePort(t)
		target := remote.Target{Address: "127.0.0.1", Port: port, User: "root", HostKey: hostKey.Public, PrivateKey: login.Private}
		dialed := make(chan error, 1)
		go func() {
			c, err := remote.DialRefusedFor(ctx, target, 2*time.Minute)
			if err == nil {
				c.Close()
			}
			dialed <- err
		}()
		// The first attempts are refused: nothing listens on the port.
		time.Sleep(200 * time.Millisecond)
		testhost.Start(t, testhost.Options{Port: port, HostKey: hostKey.Private, AuthorizedKeys: login.Public + "\n"})
		if err := <-dialed; err != nil {
			t.Fatalf("dial of a host that started listening later: %v", err)
		}
	})
	t.Run("refused past the grace", func(t *testing.T) {
		target := remote.Target{Address: "127.0.0.1", Port: testhost.FreePort(t), User: "root", HostKey: hostKey.Public, PrivateKey: login.Private}
		_, err := remote.DialRefusedFor(ctx, target, 300*time.Millisecond)
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("dial of a port nothing listens on: %v, want connection refused", err)
		}
	})
	t.Run("a wrong host key is not tried again", func(t *testing.T) {
		h := testhost.Start(t, testhost.Options{AuthorizedKeys: login.Public + "\n"})
		target := remote.Target{Address: h.Address, Port: h.Port, User: "root", HostKey: hostKey.Public, PrivateKey: login.Private}
		_, err := remote.DialRefusedFor(ctx, target, time.Minute)
		var mismatch *remote.HostKeyMismatchError
		if !errors.As(err, &mismatch) {
			t.Fatalf("dial of a host with another key: %v, want a host key mismatch", err)
		}
	})
}
