package remote

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
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
	// RemoteStore, when set, is the store on the target to copy into,
	// such as "local?root=/mnt" (a system being installed on disks
	// mounted at /mnt); by default the target's own store.
	RemoteStore string
}

// Copy copies store paths and their closures to the target's Nix store with
// `nix copy --to ssh-ng://`, through OpenSSH with the same pinned host key
// and login key as Dial. The login key is written to a file of mode 0600
// in a private temporary directory (never the Nix store) and removed
// afterwards. That directory is made under $TMPDIR, or under /tmp or
// /var/tmp when $TMPDIR's path cannot be passed in NIX_SSHOPTS (see
// sshTempBases).
func Copy(ctx context.Context, t Target, paths []string, opts CopyOptions) error {
	pinned, err := ParsePublicKey(t.HostKey)
	if err != nil {
		return fmt.Errorf("pinned host key of %s: %w", t.HostPort(), err)
	}
	dir, err := privateSSHDir(sshTempBases())
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
	// NIX_SSHOPTS is split on whitespace (newer Nix also reads quotes and
	// backslashes) and ssh expands % and ${} in file names: the paths in it
	// have none of these (privateSSHDir).
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
	to := "ssh-ng://" + t.User + "@" + t.Address
	if opts.RemoteStore != "" {
		to += "?remote-store=" + url.QueryEscape(opts.RemoteStore)
	}
	args = append(args, "--to", to)
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

// sshTempBases are the directories tried, in order, for the private
// directory of the key files Copy passes to ssh: the user's temporary
// directory ($TMPDIR, else /tmp), then /tmp and /var/tmp.
func sshTempBases() []string {
	return []string{os.TempDir(), "/tmp", "/var/tmp"}
}

// privateSSHDir makes a new private directory (mode 0700, random name) under
// the first of bases whose path can be passed in NIX_SSHOPTS as it is, and
// that is a directory others cannot rename things in (not writable by group
// or others, or sticky). It says what was wrong with each base when none will
// do.
func privateSSHDir(bases []string) (string, error) {
	var refused []string
	for _, base := range bases {
		if problem := sshBaseProblem(base); problem != "" {
			refused = append(refused, fmt.Sprintf("%q %s", base, problem))
			continue
		}
		dir, err := os.MkdirTemp(base, "landscaper-ssh-")
		if err != nil {
			refused = append(refused, err.Error())
			continue
		}
		if !sshOptSafe(dir) {
			os.Remove(dir)
			refused = append(refused, fmt.Sprintf("%q has characters NIX_SSHOPTS cannot carry", dir))
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("no directory for the login key and known hosts whose path NIX_SSHOPTS can carry (it is split on whitespace): %s; "+
		"set TMPDIR to a directory of your own whose path has only letters, digits and / . _ + -", strings.Join(refused, "; "))
}

// sshBaseProblem says why base cannot hold the key files' directory, or "".
func sshBaseProblem(base string) string {
	if !filepath.IsAbs(base) {
		return "is not an absolute path"
	}
	if !sshOptSafe(base) {
		return "has characters NIX_SSHOPTS cannot carry (only letters, digits and / . _ + - can)"
	}
	fi, err := os.Stat(base)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot be used: %v", err)
	case !fi.IsDir():
		return "is not a directory"
	case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0:
		// Whoever can write there could swap the directory for one holding
		// their own known_hosts.
		return "is writable by group or others without the sticky bit"
	}
	return ""
}

// sshOptSafe reports whether p passes through NIX_SSHOPTS and ssh's file
// name expansion unchanged: it holds only ASCII letters, digits and / . _ + -.
func sshOptSafe(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.ContainsRune("/._+-", c):
		default:
			return false
		}
	}
	return true
}
