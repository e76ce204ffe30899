package activation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HealthCheck is one check of a newly activated system: a command run on
// the host (passes on exit 0) or a URL fetched by the driver (passes on a
// 2xx answer), tried up to 1+Retries times.
type HealthCheck struct {
	Command  string
	URL      string
	Timeout  time.Duration
	Retries  int
	Interval time.Duration
}

func (h HealthCheck) String() string {
	if h.URL != "" {
		return "GET " + h.URL
	}
	return h.Command
}

// Budget is the longest the checks can take, one after the other.
func Budget(checks []HealthCheck) time.Duration {
	var d time.Duration
	for _, h := range checks {
		d += time.Duration(h.Retries+1) * (h.Timeout + h.Interval)
	}
	return d
}

// runChecks runs each check in turn until it passes or its tries are used
// up; the first check that never passes is the error.
func runChecks(ctx context.Context, r Runner, checks []HealthCheck, logf func(string, ...any)) error {
	for _, h := range checks {
		var err error
		for try := 0; try <= h.Retries; try++ {
			if try > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(h.Interval):
				}
			}
			if err = runCheck(ctx, r, h); err == nil {
				logf("health check passed: %s", h)
				break
			}
			logf("health check failed (try %d of %d): %s: %v", try+1, h.Retries+1, h, err)
		}
		if err != nil {
			return fmt.Errorf("health check %q failed %d times: %w", h.String(), h.Retries+1, err)
		}
	}
	return nil
}

func runCheck(ctx context.Context, r Runner, h HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	if h.Command != "" {
		_, err := r.Run(ctx, "health check", h.Command, nil)
		return err
	}
	return fetchURL(ctx, h.URL)
}

// fetchURL is a URL check: it passes on a 2xx answer (the body is read,
// up to 1 MiB, and dropped).
func fetchURL(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New(resp.Status)
	}
	return nil
}
