package packagingtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/systemdhost"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
)

// TestServeUnitUnderSystemd runs the boot server's unit with a pull
// directory, as the module makes it (a strict sandbox: read-only file
// system but for the boot and pull directories, no privileged system
// calls, no writable executable memory), under a real systemd (a
// container of internal/systemdhost), as the account that would run
// `landscaper apply`, with the directory made by the module's tmpfiles
// rule and the store reached through a nix-daemon. A host on this
// machine gets its desired generation, signed, and fetches its closure
// from the unit's binary cache into a store of its own: the server
// reads the store with nix path-info and nix-store --dump inside the
// sandbox.
//
// The container is Debian with Nix 2.8, not NixOS: the module's PATH
// entry for nix is Debian's /usr/bin there, and nix-daemon runs as a
// transient unit.
func TestServeUnitUnderSystemd(t *testing.T) {
	systemdhost.RequireTools(t)
	rootfs := systemdhost.RootFS(t)
	c := systemdhost.Start(t, rootfs, systemdhost.Options{})
	inContainer := func(script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := c.Exec(ctx, script)
		if err != nil {
			journal, _ := c.Exec(context.Background(), "journalctl --no-pager -o cat -u landscaper.service -u nix-daemon.service")
			t.Fatalf("%v\njournal:\n%s", err, journal)
		}
		return strings.TrimSpace(out)
	}

	// The system the server serves, in the container's store.
	toplevel := systemdhost.BuildSystem(t, systemdhost.System{Name: "serve-unit"})
	closure, err := exec.Command("nix-store", "--query", "--requisites", toplevel).Output()
	if err != nil {
		t.Fatalf("nix-store --query --requisites %s: %v", toplevel, err)
	}
	export, err := os.Create(filepath.Join(c.Root(), "root", "closure.nar"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nix-store", append([]string{"--export"}, strings.Fields(string(closure))...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = export, &stderr
	err = cmd.Run()
	if cerr := export.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("nix-store --export: %v\n%s", err, stderr.String())
	}
	inContainer("nix-store --import </root/closure.nar >/dev/null && rm /root/closure.nar")
	inContainer("systemd-run --unit=nix-daemon --quiet /usr/bin/nix-daemon && for i in $(seq 100); do [ -S /nix/var/nix/daemon-socket/socket ] && exit 0; sleep 0.1; done; exit 1")

	// The unit and the tmpfiles rule, as the module makes them, for the
	// user deploy.
	const pullDir = "/var/lib/landscaper/pull"
	installStaticLandscaper(t, filepath.Join(c.Root(), "usr", "local", "bin", "landscaper"))
	r := evalModule(t, map[string]map[string]any{"unit": {
		"enable":     true,
		"pullDir":    pullDir,
		"tftpListen": nil,
		"httpListen": ":8069",
		"ipxeDir":    nil,
		"user":       "deploy",
		"group":      "deploy",
	}})
	cs := r.Cases["unit"]
	if len(cs.FailedAssertions) > 0 || cs.Unit == nil || len(cs.Tmpfiles) != 1 {
		t.Fatalf("the module's unit: assertions %q, unit %v, tmpfiles %q", cs.FailedAssertions, cs.Unit != nil, cs.Tmpfiles)
	}
	u := *cs.Unit
	var path []string
	for _, p := range u.Path {
		if strings.HasPrefix(p, "/nix/store/") {
			p = "/usr"
		}
		path = append(path, p)
	}
	u.Path = append(path, "/usr", "/")
	unit := strings.ReplaceAll(u.unitFile(), fakeLandscaper+"/bin/landscaper", "/usr/local/bin/landscaper")
	for file, text := range map[string]string{
		"etc/systemd/system/landscaper.service": unit,
		"etc/tmpfiles.d/landscaper.conf":        cs.Tmpfiles[0] + "\n",
	} {
		if err := os.WriteFile(filepath.Join(c.Root(), file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inContainer("systemd-tmpfiles --create /etc/tmpfiles.d/landscaper.conf")
	if got := inContainer("stat -c '%a %U %G' " + pullDir); got != "750 deploy deploy" {
		t.Fatalf("the tmpfiles rule made %s %q, want mode 750 owned by deploy:deploy", pullDir, got)
	}
	inContainer("systemctl daemon-reload && systemctl start landscaper.service")
	deadline := time.Now().Add(time.Minute)
	for inContainer("test -e "+pullDir+"/server.pub && echo yes || echo no") != "yes" {
		if time.Now().After(deadline) {
			t.Fatalf("the server made no keys in %s:\n%s", pullDir, inContainer("journalctl --no-pager -o cat -u landscaper.service"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A host, published as `landscaper apply` (deploy) would.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := pulldir.Dir{Path: filepath.Join(c.Root(), pullDir)}
	if _, err := dir.Publish(signer.PublicKey(), pulldir.Desired{Toplevel: toplevel, ConfirmTimeout: 30, ActivationTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	inContainer("chown -R deploy:deploy " + pullDir + "/hosts")

	serverPub, err := os.ReadFile(filepath.Join(c.Root(), pullDir, "server.pub"))
	if err != nil {
		t.Fatal(err)
	}
	serverKey, _, _, _, err := ssh.ParseAuthorizedKey(serverPub)
	if err != nil {
		t.Fatal(err)
	}
	client, err := pullclient.New("http://"+c.Address+":8069", signer, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	answer, err := client.Desired(ctx, -1, 0)
	if err != nil || answer.Desired == nil || answer.Desired.Toplevel != toplevel {
		t.Fatalf("the host's desired generation: %+v, %v; want %s\n%s", answer, err, toplevel, inContainer("journalctl --no-pager -o cat -u landscaper.service"))
	}
	proxy, err := client.StartCacheProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	store := t.TempDir()
	fetch := exec.CommandContext(ctx, "nix-store", "--store", "local?root="+store, "--realise", toplevel)
	fetch.Env = append(os.Environ(), "NIX_CONFIG="+strings.Join([]string{
		"substituters = " + proxy.URL(),
		"trusted-public-keys = " + answer.CachePublicKey,
		"require-sigs = true",
		"narinfo-cache-negative-ttl = 0",
	}, "\n"))
	var out bytes.Buffer
	fetch.Stdout, fetch.Stderr = &out, &out
	if err := fetch.Run(); err != nil {
		t.Fatalf("fetch %s from the unit's cache: %v\n%s\nthe server's journal:\n%s", toplevel, err, out.String(), inContainer("journalctl --no-pager -o cat -u landscaper.service"))
	}
	if _, err := os.Stat(filepath.Join(store, toplevel, "bin", "switch-to-configuration")); err != nil {
		t.Errorf("the fetched system is not in the host's store: %v", err)
	}
	// The server ran sandboxed, as deploy.
	status := inContainer(`pid=$(systemctl show -p MainPID --value landscaper.service); stat -c %U /proc/$pid; grep -E '^(NoNewPrivs|Seccomp):' /proc/$pid/status`)
	if want := "deploy\nNoNewPrivs:\t1\nSeccomp:\t2"; status != want {
		t.Errorf("the server's process: %q, want %q", status, want)
	}
	if got := inContainer("ls " + pullDir + "/nonces | wc -l"); got == "0" {
		t.Errorf("the server recorded no nonce in the pull directory")
	}
}
