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
// sshTempBases). With Sudo, the target's nix-daemon runs through
// "sudo -n" (see storeURL).
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
	line := knownHostsName(t.Address, t.Port) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pinned))) + "\n"
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
	args = append(args, "--to", storeURL(t, opts))
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

// knownHostsName is how OpenSSH names a host in known_hosts, and so how
// it looks the host up there: the address alone on port 22,
// "[address]:port" on any other (an IPv6 address too: "::1",
// "[::1]:2222"), as OpenSSH's put_host_port writes it.
func knownHostsName(address string, port int) string {
	if port == 22 {
		return address
	}
	return "[" + address + "]:" + strconv.Itoa(port)
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
