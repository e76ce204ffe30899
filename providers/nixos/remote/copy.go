package remote

import (
	"bytes"
	"context"
	"fmt"
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
// with `nix copy --to unix://SOCKET`, carried over this client's
// connection (the pinned host key was checked when it was made): the
// socket is this process's (storeRelay), which runs the target's
// nix-daemon --stdio (through sudo -n with Sudo, into opts.RemoteStore
// when set) in a session of the connection for every connection nix
// makes. No ssh process, no second SSH connection, and the login key is
// never written anywhere.
func (c *Client) Copy(ctx context.Context, paths []string, opts CopyOptions) error {
	relay, err := startRelay(ctx, c, daemonCommand(c.target, opts))
	if err != nil {
		return fmt.Errorf("copy to %s: %w", c.target.HostPort(), err)
	}
	defer relay.close()
	args := []string{"--extra-experimental-features", "nix-command", "copy", "--no-check-sigs"}
	if opts.SubstituteOnDestination {
		args = append(args, "--substitute-on-destination")
	}
	args = append(args, "--to", relay.storeURL())
	args = append(args, paths...)
	cmd := exec.CommandContext(ctx, "nix", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("nix copy to %s: %w", c.target.HostPort(), ctx.Err())
		}
		msg := strings.TrimSpace(tail(stderr.String(), 15))
		if remote := strings.TrimSpace(relay.remoteStderr()); remote != "" {
			msg += "; on the target: " + tail(remote, 10)
		}
		return fmt.Errorf("nix copy to %s: %w: %s", c.target.HostPort(), err, msg)
	}
	return nil
}
