package remote

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// TestStoreURL: the ssh-ng URL brackets an IPv6 address (and nothing
// else), carries the remote store, and with Sudo reaches the store
// through "sudo -n nix-daemon", with spaces as %20.
func TestStoreURL(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		opts CopyOptions
		want string
	}{
		{name: "IPv4, root", t: Target{Address: "10.0.0.5", Port: 22, User: "root"},
			want: "ssh-ng://root@10.0.0.5"},
		{name: "host name, other port", t: Target{Address: "web.example", Port: 2222, User: "root"},
			want: "ssh-ng://root@web.example"},
		{name: "IPv6 loopback, other port", t: Target{Address: "::1", Port: 2222, User: "root"},
			want: "ssh-ng://root@[::1]"},
		{name: "IPv6, port 22", t: Target{Address: "2001:db8::5", Port: 22, User: "root"},
			want: "ssh-ng://root@[2001:db8::5]"},
		{name: "sudo", t: Target{Address: "10.0.0.5", Port: 22, User: "deploy", Sudo: true},
			want: "ssh-ng://deploy@10.0.0.5?remote-program=sudo%20-n%20nix-daemon"},
		{name: "IPv6, sudo, remote store", t: Target{Address: "::1", Port: 2200, User: "deploy", Sudo: true}, opts: CopyOptions{RemoteStore: "local?root=/mnt"},
			want: "ssh-ng://deploy@[::1]?remote-store=local%3Froot%3D%2Fmnt&remote-program=sudo%20-n%20nix-daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storeURL(tt.t, tt.opts); got != tt.want {
				t.Errorf("storeURL = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestShimCommand: the shim finds the remote command as Nix up to 2.19
// passes it (the last argument) and as later Nix does (after "--"), and
// only nix-daemon --stdio, directly or through sudo -n, is run.
func TestShimCommand(t *testing.T) {
	tests := []struct {
		args    []string
		command string
		allowed bool
	}{
		{[]string{"root@10.0.0.5", "-x", "-a", "nix-daemon --stdio"}, "nix-daemon --stdio", true},
		{[]string{"deploy@::1", "-x", "-a", "sudo -n nix-daemon --stdio --store 'local?root=/mnt'"}, "sudo -n nix-daemon --stdio --store 'local?root=/mnt'", true},
		{[]string{"root@10.0.0.5", "-x", "-a", "--", "nix-daemon", "--stdio"}, "nix-daemon --stdio", true},
		{[]string{"root@10.0.0.5", "rm -rf /"}, "rm -rf /", false},
		{[]string{"root@10.0.0.5", "nix-daemon --stdioX"}, "nix-daemon --stdioX", false},
		{[]string{"root@10.0.0.5", "sudo nix-daemon --stdio"}, "sudo nix-daemon --stdio", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got := shimCommand(tt.args)
		if got != tt.command {
			t.Errorf("shimCommand(%q) = %q, want %q", tt.args, got, tt.command)
		}
		if allowedShimCommand(got) != tt.allowed {
			t.Errorf("allowedShimCommand(%q) = %v, want %v", got, !tt.allowed, tt.allowed)
		}
	}
}

// TestCopyOverTheConnection: Copy reaches a real sshd's store over the
// client's own connection: the path arrives, sshd saw one login only (no
// second connection from an OpenSSH client), and the shim's directory is
// gone afterwards. A command other than nix-daemon is refused.
func TestCopyOverTheConnection(t *testing.T) {
	login := testhost.NewKeyPair(t)
	h := testhost.Start(t, testhost.Options{AuthorizedKeys: login.Public + "\n"})
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	path := buildTrivial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, Target{Address: h.Address, Port: h.Port, User: "root", HostKey: h.HostPublicKey(), PrivateKey: login.Private})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Copy(ctx, []string{path}, CopyOptions{}); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if !h.HasPath(path) {
		t.Errorf("the host's store lacks %s after Copy", path)
	}
	if n := strings.Count(h.SSHDLog(), "Accepted publickey"); n != 1 {
		t.Errorf("sshd accepted %d logins, want 1 (the client's own connection):\n%s", n, h.SSHDLog())
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("TMPDIR holds %d entries after Copy", len(entries))
	}

	// A shim handing over another command gets nothing run.
	s, err := startShim(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "%q\n", "touch /run/shim-ran")
	_, _ = io.ReadAll(conn)
	conn.Close()
	s.close()
	if _, err := os.Stat(filepath.Join(h.Dir, "run", "shim-ran")); err == nil {
		t.Errorf("the shim ran a command other than nix-daemon")
	}
	if !strings.Contains(s.remoteStderr(), "refused to run") {
		t.Errorf("the refusal is not reported: %q", s.remoteStderr())
	}
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
