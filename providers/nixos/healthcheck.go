package nixos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
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

// healthCheckDef is one element of the healthChecks input as the user
// defined it, declared by healthChecksAttr: the SDK has checked its names
// and types and filled in its defaults.
type healthCheckDef struct {
	Command  string  `json:"command"`
	URL      string  `json:"url"`
	Timeout  float64 `json:"timeout"`
	Retries  int     `json:"retries"`
	Interval float64 `json:"interval"`
}

// systemChecksDoc describes nixos.system's healthChecks.
const systemChecksDoc = `Checks of the activated system, in order: { command = "..."; } runs on the target (passes on exit 0), { url = "http://..."; } is fetched from the deployer (passes on 2xx); each with timeout (seconds, 10), retries (3) and interval (seconds, 2).`

// healthChecksAttr declares a healthChecks input described by doc.
func healthChecksAttr(doc string) sdk.Attr {
	return sdk.ListOfObjects("healthChecks", doc,
		sdk.String("command", "A shell command run on the target; the check passes when it exits 0. Give command or url, not both."),
		sdk.String("url", "An http:// or https:// URL fetched from the deployer; the check passes on a 2xx answer. Give command or url, not both."),
		sdk.Number("timeout", "Seconds one try may take.").Between(0.1, 3600).Default(10),
		sdk.Integer("retries", "Tries after the first failed one.").Between(0, 1000).Default(3),
		sdk.Number("interval", "Seconds between tries.").Between(0, 3600).Default(2),
	).Default([]any{})
}

// validateHealthChecks checks what the declarations cannot say (the SDK
// checks types and ranges): each check has command or url, not both, and
// a usable url. Attributes not known yet are not judged.
func validateHealthChecks(checks []healthCheckDef, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	for i, h := range checks {
		at := resource.AttrPath("healthChecks").Index(i)
		known := func(attr string) bool { return !resource.Covered(at.Attr(attr), unknown) }
		if known("command") && known("url") {
			switch {
			case h.Command == "" && h.URL == "":
				diags = append(diags, resource.Error(at, "empty health check", "a health check needs command (run on the target) or url (fetched from the deployer)"))
			case h.Command != "" && h.URL != "":
				diags = append(diags, resource.Error(at, "ambiguous health check", "give command or url, not both"))
			}
		}
		if known("url") && h.URL != "" && !isHTTPURL(h.URL) {
			diags = append(diags, resource.Error(at.Attr("url"), "invalid url", "url must be an http:// or https:// URL, got %q", h.URL))
		}
	}
	return diags
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// healthChecksOf turns valid healthChecks inputs into checks to run.
func healthChecksOf(inputs []healthCheckDef) []healthCheck {
	checks := make([]healthCheck, len(inputs))
	for i, h := range inputs {
		checks[i] = healthCheck{Command: h.Command, URL: h.URL, Timeout: seconds(h.Timeout), Retries: h.Retries, Interval: seconds(h.Interval)}
	}
	return checks
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
	return FetchHealthURL(ctx, h.URL)
}

// FetchHealthURL is a URL health check: it passes on a 2xx answer (the
// body is read, up to 1 MiB, and dropped). The pull agent runs its URL
// checks with it too.
func FetchHealthURL(ctx context.Context, url string) error {
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
