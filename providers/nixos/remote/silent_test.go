package remote

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// blackHole is a TCP proxy to target that can stop forwarding in both
// directions while keeping the connections open: a peer gone without a
// word, as a machine rebooting behind NAT (QEMU's user network) is.
type blackHole struct {
	ln      net.Listener
	mu      sync.Mutex
	silent  bool
	conns   []net.Conn
	release chan struct{}
}

func newBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, release: make(chan struct{})}
	t.Cleanup(b.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.conns = append(b.conns, c, u)
			b.mu.Unlock()
			go b.pipe(u, c)
			go b.pipe(c, u)
		}
	}()
	return b
}

// pipe copies until the black hole goes silent, then holds on.
func (b *blackHole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		b.mu.Lock()
		silent := b.silent
		b.mu.Unlock()
		if silent {
			<-b.release
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

func (b *blackHole) silence() {
	b.mu.Lock()
	b.silent = true
	b.mu.Unlock()
}

func (b *blackHole) close() {
	b.ln.Close()
	close(b.release)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

// TestRunReturnsWhenThePeerGoesSilent: a command whose context ends while
// the peer has gone silent (no reset, no answer), before its session was
// opened or while it runs, returns within the grace period instead of
// waiting for the peer forever.
func TestRunReturnsWhenThePeerGoesSilent(t *testing.T) {
	login := testhost.NewKeyPair(t)
	h := testhost.Start(t, testhost.Options{AuthorizedKeys: login.Public + "\n"})
	for _, tt := range []struct {
		name  string
		after time.Duration // when the peer goes silent, after Run began
	}{
		{"before the session", -1},
		{"while the command runs", 500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hole := newBlackHole(t, net.JoinHostPort(h.Address, strconv.Itoa(h.Port)))
			port := hole.ln.Addr().(*net.TCPAddr).Port
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := Dial(ctx, Target{Address: "127.0.0.1", Port: port, User: "root", HostKey: h.HostPublicKey(), PrivateKey: login.Private})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.after < 0 {
				hole.silence()
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer rcancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.Run(rctx, "wait", "sleep 30", nil)
				done <- err
			}()
			if tt.after >= 0 {
				time.Sleep(tt.after)
				hole.silence()
			}
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Run returned %v, want the context's deadline", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("Run did not return a minute after its context ended: it waits for a peer that went silent")
			}
		})
	}
}
