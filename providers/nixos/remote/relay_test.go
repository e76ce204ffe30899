package remote

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// TestDaemonCommand: what serves a copy on the target is nix-daemon
// --stdio, into the remote store when one is named (quoted for the
// shell), through "sudo -n" with Sudo.
func TestDaemonCommand(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		opts CopyOptions
		want string
	}{
		{name: "root", t: Target{Address: "10.0.0.5", Port: 22, User: "root"},
			want: "nix-daemon --stdio"},
		{name: "IPv6, other port", t: Target{Address: "::1", Port: 2222, User: "root"},
			want: "nix-daemon --stdio"},
		{name: "sudo", t: Target{Address: "10.0.0.5", Port: 22, User: "deploy", Sudo: true},
			want: "sudo -n nix-daemon --stdio"},
		{name: "remote store", t: Target{Address: "10.0.0.5", Port: 22, User: "root"}, opts: CopyOptions{RemoteStore: "local?root=/mnt"},
			want: "nix-daemon --stdio --store 'local?root=/mnt'"},
		{name: "sudo, remote store with a quote", t: Target{Address: "::1", Port: 2200, User: "deploy", Sudo: true}, opts: CopyOptions{RemoteStore: "local?root=/mnt/it's"},
			want: `sudo -n nix-daemon --stdio --store 'local?root=/mnt/it'\''s'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := daemonCommand(tt.t, tt.opts); got != tt.want {
				t.Errorf("daemonCommand = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCopyOverTheConnection: Copy reaches a real sshd's store over the
// client's own connection: the path arrives, sshd saw one login only (no
// second connection from an OpenSSH client), and the store socket's
// directory is gone afterwards. A TMPDIR whose name a store URL would
// change is passed over for /tmp.
func TestCopyOverTheConnection(t *testing.T) {
	login := testhost.NewKeyPair(t)
	h := testhost.Start(t, testhost.Options{AuthorizedKeys: login.Public + "\n"})
	path := buildTrivial(t)
	for _, name := range []string{"plain", "with space", "per%cent?"} {
		t.Run(name, func(t *testing.T) {
			tmp := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			before := strings.Count(h.SSHDLog(), "Accepted publickey")
			c, err := Dial(ctx, Target{Address: h.Address, Port: h.Port, User: "root", HostKey: h.HostPublicKey(), PrivateKey: login.Private})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Run(ctx, "forget the path", "nix-store --delete "+Quote(path)+" >/dev/null 2>&1; true", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Copy(ctx, []string{path}, CopyOptions{}); err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if !h.HasPath(path) {
				t.Errorf("the host's store lacks %s after Copy", path)
			}
			if n := strings.Count(h.SSHDLog(), "Accepted publickey") - before; n != 1 {
				t.Errorf("sshd accepted %d logins, want 1 (the client's own connection):\n%s", n, h.SSHDLog())
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
				t.Errorf("TMPDIR holds %d entries after Copy", len(entries))
			}
		})
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
