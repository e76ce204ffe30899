package remote

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestStoreURL: the ssh-ng URL brackets an IPv6 address (and nothing
// else), carries the remote store, and with Sudo reaches the store
// through "sudo -n nix-daemon", with spaces as %20; the known-hosts name
// is OpenSSH's: the address alone on port 22, "[address]:port" otherwise.
func TestStoreURL(t *testing.T) {
	tests := []struct {
		name       string
		t          Target
		opts       CopyOptions
		want       string
		knownHosts string
	}{
		{name: "IPv4, root", t: Target{Address: "10.0.0.5", Port: 22, User: "root"},
			want: "ssh-ng://root@10.0.0.5", knownHosts: "10.0.0.5"},
		{name: "host name, other port", t: Target{Address: "web.example", Port: 2222, User: "root"},
			want: "ssh-ng://root@web.example", knownHosts: "[web.example]:2222"},
		{name: "IPv6 loopback, other port", t: Target{Address: "::1", Port: 2222, User: "root"},
			want: "ssh-ng://root@[::1]", knownHosts: "[::1]:2222"},
		{name: "IPv6, port 22", t: Target{Address: "2001:db8::5", Port: 22, User: "root"},
			want: "ssh-ng://root@[2001:db8::5]", knownHosts: "2001:db8::5"},
		{name: "sudo", t: Target{Address: "10.0.0.5", Port: 22, User: "deploy", Sudo: true},
			want: "ssh-ng://deploy@10.0.0.5?remote-program=sudo%20-n%20nix-daemon", knownHosts: "10.0.0.5"},
		{name: "IPv6, sudo, remote store", t: Target{Address: "::1", Port: 2200, User: "deploy", Sudo: true}, opts: CopyOptions{RemoteStore: "local?root=/mnt"},
			want: "ssh-ng://deploy@[::1]?remote-store=local%3Froot%3D%2Fmnt&remote-program=sudo%20-n%20nix-daemon", knownHosts: "[::1]:2200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storeURL(tt.t, tt.opts); got != tt.want {
				t.Errorf("storeURL = %q, want %q", got, tt.want)
			}
			if got := knownHostsName(tt.t.Address, tt.t.Port); got != tt.knownHosts {
				t.Errorf("knownHostsName = %q, want %q", got, tt.knownHosts)
			}
		})
	}
}

// TestCopyHandsSSHTheTarget runs Copy with this machine's nix and a
// stand-in ssh first in PATH that records what it is given (its
// arguments, and the known-hosts file it is pointed at) and fails: what
// OpenSSH would receive from this Nix for an IPv6 target, a non-default
// port, sudo and a remote store. OpenSSH takes "user@::1" as user and
// host, looks the host up in known_hosts as "[::1]:port" and runs the
// last argument on the target.
func TestCopyHandsSSHTheTarget(t *testing.T) {
	if _, err := exec.LookPath("nix"); err != nil {
		t.Fatalf("nix not found: %v (scripts/install-deps.sh installs it)", err)
	}
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "ssh-args")
	script := `#!/bin/sh
out=` + record + `
for a in "$@"; do printf '%s\n' "$a" >>"$out"; done
prev=
for a in "$@"; do
	case "$prev$a" in -oUserKnownHostsFile=*) printf 'known_hosts: %s\n' "$(cat "${a#UserKnownHostsFile=}")" >>"$out" ;; esac
	prev=$a
done
exit 255
`
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	hostKey, signer := testKeys(t)
	path := buildTrivial(t)

	tests := []struct {
		name string
		t    Target
		opts CopyOptions
		// dest is ssh's first argument, command its last (run on the
		// target), knownHosts the known-hosts line it is given.
		dest, command, knownHosts string
	}{
		{name: "IPv6 as root", t: Target{Address: "::1", Port: 2222, User: "root"},
			dest: "root@::1", command: "nix-daemon --stdio", knownHosts: "[::1]:2222 " + hostKey},
		{name: "IPv6 with sudo into a remote store", t: Target{Address: "::1", Port: 2222, User: "deploy", Sudo: true}, opts: CopyOptions{RemoteStore: "local?root=/mnt"},
			dest: "deploy@::1", command: "sudo -n nix-daemon --stdio --store 'local?root=/mnt'", knownHosts: "[::1]:2222 " + hostKey},
		{name: "IPv4 on port 22 with sudo", t: Target{Address: "127.0.0.1", Port: 22, User: "deploy", Sudo: true},
			dest: "deploy@127.0.0.1", command: "sudo -n nix-daemon --stdio", knownHosts: "127.0.0.1 " + hostKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(record)
			tt.t.HostKey, tt.t.PrivateKey = hostKey, signer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := Copy(ctx, tt.t, []string{path}, tt.opts); err == nil {
				t.Fatal("Copy through an ssh that fails succeeded")
			}
			b, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("the stand-in ssh was not run: %v", err)
			}
			var args, known []string
			for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
				if k, ok := strings.CutPrefix(line, "known_hosts: "); ok {
					known = append(known, k)
				} else {
					args = append(args, line)
				}
			}
			if len(args) < 2 || args[0] != tt.dest || args[len(args)-1] != tt.command {
				t.Errorf("ssh was given %q; want the destination %q first and the command %q last", args, tt.dest, tt.command)
			}
			if !strings.Contains(" "+strings.Join(args, " ")+" ", fmt.Sprintf(" -p %d ", tt.t.Port)) {
				t.Errorf("ssh was given %q, without -p %d", args, tt.t.Port)
			}
			if len(known) != 1 || known[0] != tt.knownHosts {
				t.Errorf("known hosts %q, want the one line %q", known, tt.knownHosts)
			}
		})
	}
}

// testKeys returns a public host key line and a private login key.
func testKeys(t *testing.T) (hostKey, privateKey string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"host", "login"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "host.pub"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePublicKey(string(pub))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := os.ReadFile(filepath.Join(dir, "login"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), string(priv)
}

// buildTrivial builds a small store path to copy.
func buildTrivial(t *testing.T) string {
	t.Helper()
	expr := `derivation { name = "landscaper-remote-copy-probe"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo probe > $out" ]; }`
	cmd := exec.Command("nix-build", "--no-out-link", "-E", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	return strings.TrimSpace(string(out))
}
