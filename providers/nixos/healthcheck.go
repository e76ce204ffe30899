package nixos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
)

// healthCheck is one check of a newly activated system: a command run on
// the target (success: exit 0) or a URL fetched from the deployer
// (success: a 2xx answer), tried up to 1+Retries times.
type healthCheck struct {
	Command  string
	URL      string
	Timeout  time.Duration
	Retries  int
	Interval time.Duration
}

func (h healthCheck) String() string {
	if h.URL != "" {
		return "GET " + h.URL
	}
	return h.Command
}

const (
	defaultCheckTimeout  = 10
	defaultCheckRetries  = 3
	defaultCheckInterval = 2
)

var healthCheckKeys = []string{"command", "url", "timeout", "retries", "interval"}

// parseHealthChecks decodes and checks the healthChecks input, naming the
// element and attribute of each problem.
func parseHealthChecks(raw []map[string]any) ([]healthCheck, resource.Diagnostics) {
	var checks []healthCheck
	var diags resource.Diagnostics
	for i, m := range raw {
		at := resource.AttrPath("healthChecks").Index(i)
		bad := func(attr, summary, format string, args ...any) {
			p := at
			if attr != "" {
				p = at.Attr(attr)
			}
			diags = append(diags, resource.Error(p, summary, format, args...))
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !slices.Contains(healthCheckKeys, k) {
				bad(k, "unknown health check attribute", "%q is not a health check attribute; known: %s", k, strings.Join(healthCheckKeys, ", "))
			}
		}
		h := healthCheck{Timeout: defaultCheckTimeout * time.Second, Retries: defaultCheckRetries, Interval: defaultCheckInterval * time.Second}
		str := func(k string) string {
			v, ok := m[k]
			if !ok || v == nil {
				return ""
			}
			s, ok := v.(string)
			if !ok {
				bad(k, "wrong type", "%s must be a string", k)
			}
			return s
		}
		num := func(k string, min, max float64, whole bool) (float64, bool) {
			v, ok := m[k]
			if !ok || v == nil {
				return 0, false
			}
			f, ok := v.(float64)
			if !ok || f < min || f > max || (whole && f != math.Trunc(f)) {
				kind := "a number"
				if whole {
					kind = "a whole number"
				}
				bad(k, "invalid "+k, "%s must be %s from %v to %v", k, kind, min, max)
				return 0, false
			}
			return f, true
		}
		h.Command, h.URL = str("command"), str("url")
		switch {
		case h.Command == "" && h.URL == "":
			bad("", "empty health check", "a health check needs command (run on the target) or url (fetched from the deployer)")
		case h.Command != "" && h.URL != "":
			bad("", "ambiguous health check", "give command or url, not both")
		case h.URL != "":
			if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("url", "invalid url", "url must be an http:// or https:// URL, got %q", h.URL)
			}
		}
		if f, ok := num("timeout", 0.1, 3600, false); ok {
			h.Timeout = seconds(f)
		}
		if f, ok := num("retries", 0, 1000, true); ok {
			h.Retries = int(f)
		}
		if f, ok := num("interval", 0, 3600, false); ok {
			h.Interval = seconds(f)
		}
		checks = append(checks, h)
	}
	return checks, diags
}

// budget is the longest the checks can take, one after the other.
func budget(checks []healthCheck) time.Duration {
	var d time.Duration
	for _, h := range checks {
		d += time.Duration(h.Retries+1) * (h.Timeout + h.Interval)
	}
	return d
}

// runChecks runs each check in turn until it passes or its tries are used
// up; the first check that never passes is the error.
func runChecks(ctx context.Context, c *remote.Client, checks []healthCheck, logf func(string, ...any)) error {
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
			if err = runCheck(ctx, c, h); err == nil {
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

func runCheck(ctx context.Context, c *remote.Client, h healthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	if h.Command != "" {
		_, err := c.Run(ctx, "health check", h.Command, nil)
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
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
