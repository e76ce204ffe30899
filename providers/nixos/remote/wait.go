package remote

import (
	"context"
	"errors"
	"fmt"
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
	wait := b.First
	var last error
	for tries := 1; ; tries++ {
		actx, cancel := context.WithTimeout(ctx, attempt)
		c, err := Dial(actx, t)
		cancel()
		if err == nil {
			return c, nil
		}
		if Permanent(err) {
			return nil, err
		}
		last = err
		if progress != nil {
			progress(tries, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("%s did not answer SSH after %d attempts: %w (last error: %v)", t.HostPort(), tries, ctx.Err(), last)
		case <-timer.C:
		}
		if wait *= 2; wait > b.Max {
			wait = b.Max
		}
	}
}
