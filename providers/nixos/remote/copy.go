package remote

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	// SubstituteOnDestination lets the target fetch paths from its own
	// binary caches instead of through the deployer.
	SubstituteOnDestination bool
	// RemoteStore, when set, is the store on the target to copy into,
	// such as "local?root=/mnt" (a system being installed on disks
	// mounted at /mnt); by default the target's own store.
	RemoteStore string
}

// Copy copies store paths and their closures to the target's Nix store
// over a new connection (Dial): see Client.Copy.
func Copy(ctx context.Context, t Target, paths []string, opts CopyOptions) error {
	c, err := Dial(ctx, t)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", t.HostPort(), err)
	}
	defer c.Close()
	return c.Copy(ctx, paths, opts)
}

// Copy copies store paths and their closures to the target's Nix store
// with `nix copy --to ssh-ng://`, carried over this client's connection
// (the pinned host key was checked when it was made): the "ssh" that nix
// runs is this program again, as an SSH shim (RunSSHShim) that hands the
// remote command and its stream to this process through a socket in a
// private directory; this process runs the command (nix-daemon --stdio,
// through sudo -n with Sudo) in a session of the connection. No OpenSSH
// process, no second SSH connection, and the login key is never written
// anywhere.
func (c *Client) Copy(ctx context.Context, paths []string, opts CopyOptions) error {
	shim, err := startShim(ctx, c)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", c.target.HostPort(), err)
	}
	defer shim.close()
	args := []string{"--extra-experimental-features", "nix-command", "copy", "--no-check-sigs"}
	if opts.SubstituteOnDestination {
		args = append(args, "--substitute-on-destination")
	}
	args = append(args, "--to", storeURL(c.target, opts))
	args = append(args, paths...)
	cmd := exec.CommandContext(ctx, "nix", args...)
	cmd.Env = shim.env(os.Environ())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("nix copy to %s: %w", c.target.HostPort(), ctx.Err())
		}
		msg := strings.TrimSpace(tail(stderr.String(), 15))
		if remote := strings.TrimSpace(shim.remoteStderr()); remote != "" {
			msg += "; on the target: " + tail(remote, 10)
		}
		return fmt.Errorf("nix copy to %s: %w: %s", c.target.HostPort(), err, msg)
	}
	return nil
}

// storeURL is the ssh-ng store URL nix copy copies to. An IPv6 address is
// bracketed ("ssh-ng://root@[2001:db8::5]"): Nix 2.4 to 2.30 take the
// brackets off before they run ssh, so ssh is given "root@2001:db8::5",
// and Nix 2.31 and later need them. The port is not in the URL but in
// NIX_SSHOPTS (-p), which every Nix version passes to ssh. With Sudo, the
// target's store is reached through "sudo -n nix-daemon --stdio"
// (remote-program): nix-daemon then runs as root with the store itself,
// and trusts its client, so the login user needs passwordless sudo, as
// for every other command, and need not be one of the target's
// trusted-users. Query values are percent-encoded with %20 for a space:
// Nix does not read "+" as one.
func storeURL(t Target, opts CopyOptions) string {
	host := t.Address
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	var params []string
	if opts.RemoteStore != "" {
		params = append(params, "remote-store="+queryEscape(opts.RemoteStore))
	}
	if t.Sudo {
		params = append(params, "remote-program="+queryEscape("sudo -n nix-daemon"))
	}
	u := "ssh-ng://" + t.User + "@" + host
	if len(params) > 0 {
		u += "?" + strings.Join(params, "&")
	}
	return u
}

// queryEscape escapes s for a query value in a Nix store URL.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
