package nixos

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// connectionAttrs are the inputs both types use to reach a host.
func connectionAttrs() []sdk.Attr {
	return []sdk.Attr{
		sdk.String("address", `Host name or IP address of the target; an IPv6 address without brackets ("2001:db8::5", "::1"), the port goes in port.`).Required(),
		sdk.Number("port", "SSH port of the target.").Default(22),
		sdk.String("user", `User to log in as. Commands run as root: directly for "root", through "sudo -n" otherwise (passwordless sudo needed; checked before anything changes).`).Default("root"),
		sdk.String("privateKey", "The login key, in OpenSSH form (an ssh-keypair.keypair's privateKey, say). Never shown, logged or written to the Nix store.").Required().Sensitive(),
	}
}

// connection is the decoded connection inputs.
type connection struct {
	Address    string  `json:"address"`
	Port       float64 `json:"port"`
	User       string  `json:"user"`
	PrivateKey string  `json:"privateKey"`
}

// validateConnection checks the connection inputs that are known.
func validateConnection(c connection, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	known := func(name string) bool { return !resource.Covered(resource.AttrPath(name), unknown) }
	if known("address") {
		if problem := addressProblemOf(c.Address); problem != "" {
			diags = append(diags, resource.Error(resource.AttrPath("address"), "invalid address", "%s", problem))
		}
	}
	if known("port") && (c.Port != float64(int(c.Port)) || c.Port < 1 || c.Port > 65535) {
		diags = append(diags, resource.Error(resource.AttrPath("port"), "invalid port", "port must be a whole number from 1 to 65535, got %v", c.Port))
	}
	if known("user") && (c.User == "" || strings.ContainsAny(c.User, " \t\r\n/@:'\"")) {
		diags = append(diags, resource.Error(resource.AttrPath("user"), "invalid user", "user must be a login name, got %q", c.User))
	}
	if known("privateKey") {
		if _, err := ssh.ParsePrivateKey([]byte(c.PrivateKey)); err != nil {
			// The parser's message does not quote the key.
			diags = append(diags, resource.Error(resource.AttrPath("privateKey"), "invalid private key", "privateKey must be an unencrypted OpenSSH or PEM private key: %v", err))
		}
	}
	return diags
}

// addressProblemOf says what is wrong with an address input, or "". An
// IPv6 address is written plainly ("::1"): brackets belong to the forms
// that carry a port too ("[::1]:22", URLs), and the provider writes them
// where they are needed (host:port, the known-hosts line). A zone
// ("fe80::1%eth0") is refused: no form of it is supported or tested
// (nix copy's ssh-ng:// store URL, which the copy no longer uses, could
// not carry one the same way across Nix versions).
func addressProblemOf(a string) string {
	const zone = "address %q has a zone (an interface after %%): link-local IPv6 addresses with a zone are not supported; use a global or unique local address, or a host name"
	switch {
	case strings.TrimSpace(a) == "" || strings.ContainsAny(a, " \t\r\n/@'\"?#\\"):
		return fmt.Sprintf("address must be a host name or IP address, got %q", a)
	case strings.ContainsAny(a, "[]"):
		inner := strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		ip, err := netip.ParseAddr(inner)
		switch {
		case err == nil && ip.Is6() && ip.Zone() != "":
			return fmt.Sprintf(zone, a)
		case err == nil && ip.Is6():
			return fmt.Sprintf("address must be an IPv6 address without brackets: write %q, not %q", inner, a)
		}
		return fmt.Sprintf("address must be a host name or IP address, without brackets or a port (the port goes in port), got %q", a)
	case strings.Contains(a, ":"):
		ip, err := netip.ParseAddr(a)
		switch {
		case err == nil && ip.Is6() && ip.Zone() != "":
			return fmt.Sprintf(zone, a)
		case err == nil && ip.Is6():
			return ""
		}
		return fmt.Sprintf("address %q has a colon but is not an IPv6 address: give the host name or IP address alone, and the port in port", a)
	case strings.Contains(a, "%"):
		return fmt.Sprintf("address must be a host name or IP address, got %q", a)
	}
	return ""
}

// validatePublicKey checks an authorized_keys line at the named input.
func validatePublicKey(name, line string, unknown []resource.Path) resource.Diagnostics {
	if resource.Covered(resource.AttrPath(name), unknown) {
		return nil
	}
	if _, err := remote.ParsePublicKey(line); err != nil {
		return resource.Diagnostics{resource.Error(resource.AttrPath(name), "invalid public key", "%s must be an OpenSSH public key line such as \"ssh-ed25519 AAAA...\": %v", name, err)}
	}
	return nil
}

// validateSeconds checks a positive number of seconds at the named input.
func validateSeconds(name string, v float64, unknown []resource.Path) resource.Diagnostics {
	if resource.Covered(resource.AttrPath(name), unknown) {
		return nil
	}
	if v <= 0 || v > 7*24*3600 {
		return resource.Diagnostics{resource.Error(resource.AttrPath(name), "invalid duration", "%s is in seconds and must be more than 0 and at most a week, got %v", name, v)}
	}
	return nil
}

func seconds(v float64) time.Duration {
	return time.Duration(v * float64(time.Second))
}

// target is the remote target for the connection, pinned to hostKey.
func (c connection) target(hostKey string) remote.Target {
	return remote.Target{Address: c.Address, Port: int(c.Port), User: c.User, PrivateKey: c.PrivateKey, HostKey: hostKey, Sudo: c.User != "root"}
}

// normalizeKey writes a public key line as "type base64", without the
// comment, so that the same key always reads the same.
func normalizeKey(line string) (string, error) {
	key, err := remote.ParsePublicKey(line)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}

// refusedGrace is how long a single connection is tried again while it
// is refused (see remote.DialRefusedFor): an sshd reloading.
const refusedGrace = 3 * time.Second

// dialWithin dials the target, bounded by within; a refused connection
// is tried again for refusedGrace.
func dialWithin(ctx context.Context, t remote.Target, within time.Duration) (*remote.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c, err := remote.DialRefusedFor(ctx, t, refusedGrace)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// checkRoot makes sure commands run as root on the host behind c (see
// remote.Client.CheckRoot), within 30 seconds.
func checkRoot(ctx context.Context, c *remote.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.CheckRoot(ctx)
}
