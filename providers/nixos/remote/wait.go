package remote

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Backoff is how long to wait between attempts: First, doubling up to Max.
type Backoff struct {
	First, Max time.Duration
}

// DefaultBackoff starts at a quarter second and waits at most 5 s.
var DefaultBackoff = Backoff{First: 250 * time.Millisecond, Max: 5 * time.Second}

// Permanent reports whether a dial error will not go away by trying again:
// a wrong host key, a host its Target.Vet refused, or a refused login key.
func Permanent(err error) bool {
	var mismatch *HostKeyMismatchError
	var veto *VetoError
	var auth *AuthError
	return errors.As(err, &mismatch) || errors.As(err, &veto) || errors.As(err, &auth)
}

// WaitFor dials t until it answers, waiting b between attempts, until ctx is
// done. Each attempt is bounded by attempt. A wrong host key or a refused
// login ends the wait at once. progress, when not nil, is told of each
// failed attempt.
func WaitFor(ctx context.Context, t Target, attempt time.Duration, b Backoff, progress func(tries int, err error)) (*Client, error) {
	var tries int
	c, err := dialUntil(ctx, t, attempt, b, func(err error) bool {
		tries++
		if Permanent(err) {
			return false
		}
		if progress != nil {
			progress(tries, err)
		}
		return true
	})
	if err != nil && !Permanent(err) {
		return nil, fmt.Errorf("%s did not answer SSH after %d attempts: %w (last error: %v)", t.HostPort(), tries, ctx.Err(), err)
	}
	return c, err
}

// DialRefusedFor dials t, bounded by ctx, and tries again for grace while
// the connection is refused: an sshd that reloads stops listening for a
// moment (it executes itself again), and one before OpenSSH 9.8 reads the
// host key from disk for every connection, so a rotated key can be
// confirmed on a connection the old listener took just before reloading.
// Any other error, and the refusal once grace is past, is returned.
func DialRefusedFor(ctx context.Context, t Target, grace time.Duration) (*Client, error) {
	giveUp := time.Now().Add(grace)
	b := Backoff{First: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	return dialUntil(ctx, t, 0, b, func(err error) bool {
		return errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(giveUp)
	})
}

// dialUntil dials t, each attempt bounded by attempt (when above 0) and
// all by ctx, waiting b between attempts while again says an error is
// worth another; it returns the last error otherwise (at ctx's end, the
// error before it).
func dialUntil(ctx context.Context, t Target, attempt time.Duration, b Backoff, again func(error) bool) (*Client, error) {
	wait := b.First
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if attempt > 0 {
			actx, cancel = context.WithTimeout(ctx, attempt)
		}
		c, err := Dial(actx, t)
		cancel()
		if err == nil {
			return c, nil
		}
		if !again(err) {
			return nil, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, err
		case <-timer.C:
		}
		if wait *= 2; wait > b.Max {
			wait = b.Max
		}
	}
}
