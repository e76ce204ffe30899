package remote

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	// SubstituteOnDestination lets the target fetch paths from its own
	// binary caches instead of through the deployer.
	SubstituteOnDestination bool
}

// Copy copies store paths and their closures to the target's Nix store with
// `nix copy --to ssh-ng://`, through OpenSSH with the same pinned host key
// and login key as Dial. The login key is written to a file of mode 0600
// in a private temporary directory (never the Nix store) and removed
// afterwards.
func Copy(ctx context.Context, t Target, paths []string, opts CopyOptions) error {
	pinned, err := ParsePublicKey(t.HostKey)
	if err != nil {
		return fmt.Errorf("pinned host key of %s: %w", t.HostPort(), err)
	}
	dir, err := os.MkdirTemp("", "landscaper-ssh-")
	if err != nil {
		return fmt.Errorf("copy to %s: %w", t.HostPort(), err)
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "id")
	if err := os.WriteFile(keyFile, []byte(strings.TrimRight(t.PrivateKey, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("copy to %s: write login key: %w", t.HostPort(), err)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	hostName := t.Address
	if t.Port != 22 {
		hostName = "[" + t.Address + "]:" + strconv.Itoa(t.Port)
	}
	line := hostName + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pinned))) + "\n"
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		return fmt.Errorf("copy to %s: write known hosts: %w", t.HostPort(), err)
	}
	// NIX_SSHOPTS is split on whitespace: the temporary directory's name
	// has none.
	sshOpts := []string{
		"-p", strconv.Itoa(t.Port), "-i", keyFile,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
	}
	args := []string{"--extra-experimental-features", "nix-command", "copy", "--no-check-sigs"}
	if opts.SubstituteOnDestination {
		args = append(args, "--substitute-on-destination")
	}
	args = append(args, "--to", "ssh-ng://"+t.User+"@"+t.Address)
	args = append(args, paths...)
	cmd := exec.CommandContext(ctx, "nix", args...)
	cmd.Env = append(os.Environ(), "NIX_SSHOPTS="+strings.Join(sshOpts, " "))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("nix copy to %s: %w", t.HostPort(), ctx.Err())
		}
		return fmt.Errorf("nix copy to %s: %w: %s", t.HostPort(), err, strings.TrimSpace(tail(stderr.String(), 15)))
	}
	return nil
}
