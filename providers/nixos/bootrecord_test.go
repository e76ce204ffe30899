package nixos_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/bootserver"
)

// The machine, and another client on the boot network: the whole of
// 127/8 is loopback on Linux, so curl bound to 127.0.0.2 reaches the boot
// server from another source address. The stand-in host's sshd listens on
// 127.0.0.1, the machine's address.
const (
	machineAddr = "127.0.0.1"
	otherAddr   = "127.0.0.2"
)

// bootNet is a real boot server on loopback serving one entry whose extra
// archive stands for the one that carries the installer's host key.
type bootNet struct {
	t       *testing.T
	version *bootentry.Version
	srv     *bootserver.Server
	log     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newBootNet(t *testing.T) *bootNet {
	t.Helper()
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := bootentry.Store{Dir: filepath.Join(dir, "boot")}
	v, err := store.Put(bootentry.Entry{MAC: "52:54:00:6b:65:79", Kernel: kernel}, []byte("the installer's host key"))
	if err != nil {
		t.Fatal(err)
	}
	b := &bootNet{t: t, version: v, log: &syncBuffer{}}
	b.srv, err = bootserver.New(bootserver.Config{
		BootDir: store.Dir, TFTPAddr: machineAddr + ":0", HTTPAddr: machineAddr + ":0",
		Logger: slog.New(slog.NewTextHandler(b.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("boot server: %v", err)
		}
		if t.Failed() {
			t.Logf("boot server log:\n%s", b.log.String())
		}
	})
	return b
}

// url is the URL of the version's script or archive over protocol.
func (b *bootNet) url(protocol string, archive bool) string {
	name := bootentry.ScriptPath(b.version.MAC)
	if archive {
		name = "v/" + bootentry.FileName(b.version.MAC) + "/" + b.version.ID + "/" + bootentry.ExtraName
	}
	if protocol == "tftp" {
		return "tftp://" + b.srv.TFTPAddr().String() + "/" + name
	}
	return "http://" + b.srv.HTTPAddr().String() + "/" + name
}

// fetch fetches the script, or the archive, with curl bound to from, and
// returns what it got and curl's error.
func (b *bootNet) fetch(from, protocol string, archive bool) ([]byte, error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "--silent", "--show-error", "--fail", "--interface", from, "--max-time", "30", b.url(protocol, archive))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("curl --interface %s %s: %w: %s", from, b.url(protocol, archive), err, stderr.String())
	}
	return out.Bytes(), nil
}

// boot fetches the script and then the archive from from, as a machine
// does, and fails the test unless both come (or, with refused, unless
// the archive is refused).
func (b *bootNet) boot(from, protocol string, refused bool) {
	b.t.Helper()
	if _, err := b.fetch(from, protocol, false); err != nil {
		b.t.Fatal(err)
	}
	got, err := b.fetch(from, protocol, true)
	switch {
	case refused && (err == nil || len(got) > 0):
		b.t.Fatalf("%s got the archive, want it refused", from)
	case !refused && (err != nil || string(got) != "the installer's host key"):
		b.t.Fatalf("%s did not get the archive: %q, %v", from, got, err)
	}
}

// TestHostKeyBootRecord: with bootRecord, a host presenting the expected
// key is trusted only when the boot server's record shows that the
// archive went to one client, the one that fetched the script first, at
// the host's address, and nobody else asked for it; otherwise host-key
// fails before offering a credential, naming the addresses and the times,
// and does not rotate or seal. A trusted key is rotated and the archive
// sealed, after which the boot server refuses it to everyone.
func TestHostKeyBootRecord(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: install Debian's curl (scripts/install-deps.sh installs it)")
	}
	for _, tc := range []struct {
		name string
		// fetches plays the boot network before the host answers.
		fetches func(b *bootNet)
		// want are what the error must name; none: host-key succeeds.
		want []string
	}{
		{
			name:    "the machine alone",
			fetches: func(b *bootNet) { b.boot(machineAddr, "tftp", false) },
		},
		{
			name: "script over tftp, archive over http, twice",
			fetches: func(b *bootNet) {
				b.boot(machineAddr, "tftp", false)
				if got, err := b.fetch(machineAddr, "http", true); err != nil || len(got) == 0 {
					b.t.Fatalf("the machine's second fetch: %v", err)
				}
			},
		},
		{
			name: "a second client asked for the archive after the machine",
			fetches: func(b *bootNet) {
				b.boot(machineAddr, "tftp", false)
				b.boot(otherAddr, "http", true)
			},
			want: []string{otherAddr + " asked for the archive too", machineAddr + " fetched the machine's script first", otherAddr + " was refused the archive"},
		},
		{
			name: "another client took the archive first",
			fetches: func(b *bootNet) {
				b.boot(otherAddr, "tftp", false)
				b.boot(machineAddr, "tftp", true)
			},
			want: []string{otherAddr + " fetched the machine's script first", machineAddr + " asked for the archive too", "the archive went to " + otherAddr + ", but the host is reached at " + machineAddr},
		},
		{
			name:    "another client took the archive, the machine never asked",
			fetches: func(b *bootNet) { b.boot(otherAddr, "http", false) },
			want:    []string{"the archive went to " + otherAddr + ", but the host is reached at " + machineAddr, otherAddr + " got the archive"},
		},
		{
			name:    "nobody fetched anything",
			fetches: func(*bootNet) {},
			want:    []string{"no client fetched the machine's script", "nothing recorded"},
		},
		{
			name: "the script was fetched, the archive never served",
			fetches: func(b *bootNet) {
				if _, err := b.fetch(machineAddr, "tftp", false); err != nil {
					b.t.Fatal(err)
				}
			},
			want: []string{"never served the archive to " + machineAddr},
		},
		{
			name: "the record says another client got the archive",
			fetches: func(b *bootNet) {
				b.boot(machineAddr, "tftp", false)
				// As a boot server that does not bind the archive (an
				// older one sharing the directory) would leave it.
				ev := bootentry.FetchEvent{Kind: bootentry.EventServed, Address: "127.0.0.3", Protocol: "http", Time: time.Now()}
				if err := bootentry.AppendEvent(b.version.FetchDir(), ev); err != nil {
					b.t.Fatal(err)
				}
			},
			want: []string{"the archive was served to 127.0.0.3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBootNet(t)
			installerKey := newKeyPair(t)
			f := newFixture(t, testhost.Options{HostKey: installerKey.Private})
			tc.fetches(b)

			hk := f.conn()
			hk["expectedHostKey"] = installerKey.Public
			hk["bootRecord"] = b.version.FetchDir()
			hk["timeout"] = 60
			st, diags, ev := f.create(t, hostKeyType, hk)
			record, err := bootentry.ReadFetchRecord(b.version.FetchDir())
			if err != nil {
				t.Fatal(err)
			}
			_, sealed, err := bootentry.SealedAt(b.version.FetchDir())
			if err != nil {
				t.Fatal(err)
			}

			if len(tc.want) == 0 {
				if diags.HasError() {
					t.Fatalf("host-key refused a key only the machine had: %v", diags.Err())
				}
				if got := outputString(t, st, "hostPublicKey"); got == installerKey.Public || got == "" {
					t.Errorf("hostPublicKey = %q, want a rotated key", got)
				}
				if !sealed {
					t.Errorf("after the rotation the archive is not sealed")
				}
				if countLines(ev.Logs, "sealed "+b.version.FetchDir()) != 1 {
					t.Errorf("host-key did not log the seal: %q", ev.Logs)
				}
				// Sealed: the boot server refuses the archive to everyone,
				// the machine included, over both protocols.
				for _, from := range []string{machineAddr, otherAddr} {
					for _, p := range []string{"tftp", "http"} {
						if got, err := b.fetch(from, p, true); err == nil || len(got) > 0 {
							t.Errorf("after the seal %s got the archive over %s (%d bytes, %v)", from, p, len(got), err)
						}
					}
				}
				return
			}

			if !diags.HasError() {
				t.Fatalf("host-key trusted the key although the record says %+v", record)
			}
			msg := diags.Err().Error()
			t.Logf("host-key: %s", msg)
			want := append([]string{"refused before authenticating", "may be in other hands"}, tc.want...)
			// The times are named too: the claim's, when there is one.
			if record.Claim != nil {
				want = append(want, record.Claim.Time.UTC().Format(time.RFC3339Nano))
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q:\n%s", w, msg)
				}
			}
			if sealed {
				t.Errorf("a refused key sealed the archive")
			}
			if got := f.host.HostPublicKey(); !strings.HasPrefix(strings.TrimSpace(got), strings.TrimSpace(installerKey.Public)) {
				t.Errorf("the host key changed although the key was refused: %s", got)
			}
			log := f.host.SSHDLog()
			for _, sign := range []string{"publickey", "Accepted", "authenticating user", "Postponed"} {
				if strings.Contains(log, sign) {
					t.Errorf("sshd saw an authentication attempt (%q):\n%s", sign, log)
				}
			}
			if !strings.Contains(log, "Connection from 127.0.0.1") {
				t.Errorf("sshd log does not show the refused connection, so the check above proves nothing:\n%s", log)
			}
		})
	}
}

// TestHostKeyBootRecordOnTimeout: a machine that was refused its archive
// never comes up with the key; the timeout error says what the boot
// server saw.
func TestHostKeyBootRecordOnTimeout(t *testing.T) {
	t.Parallel()
	b := newBootNet(t)
	b.boot(otherAddr, "tftp", false)
	b.boot(machineAddr, "tftp", true)
	f := newFixture(t, testhost.Options{})
	hk := f.conn()
	hk["port"] = testhost.FreePort(t)
	hk["expectedHostKey"] = newKeyPair(t).Public
	hk["bootRecord"] = b.version.FetchDir()
	hk["timeout"] = 2
	_, diags, _ := f.create(t, hostKeyType, hk)
	if !diags.HasError() {
		t.Fatal("waiting for a host that is not there succeeded")
	}
	msg := diags.Err().Error()
	for _, w := range []string{"did not answer SSH", otherAddr + " fetched the machine's script first", machineAddr + " was refused the archive"} {
		if !strings.Contains(msg, w) {
			t.Errorf("the error does not say %q:\n%s", w, msg)
		}
	}
}
