package nixos

import (
	"net/url"

	"github.com/landscaper-nix/landscaper/internal/activation"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

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
func healthChecksOf(inputs []healthCheckDef) []activation.HealthCheck {
	checks := make([]activation.HealthCheck, len(inputs))
	for i, h := range inputs {
		checks[i] = activation.HealthCheck{Command: h.Command, URL: h.URL, Timeout: seconds(h.Timeout), Retries: h.Retries, Interval: seconds(h.Interval)}
	}
	return checks
}
