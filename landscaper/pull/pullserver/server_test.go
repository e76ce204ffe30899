package pullserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/nixcache"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// build builds a store path with one dependency of its own, both named
// after name.
func build(t *testing.T, name string) string {
	t.Helper()
	expr := `let name = "` + name + `"; dep = derivation { name = "${name}-dep"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${name} > $out" ]; };
in derivation { name = "${name}-top"; system = builtins.currentSystem; builder = "/bin/sh"; inherit dep; args = [ "-c" "echo $dep > $out" ]; }`
	cmd := exec.Command("nix-build", "--no-out-link", "-E", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	return strings.TrimSpace(string(out))
}

type fixture struct {
	dir    pulldir.Dir
	server *Server
	http   *httptest.Server
}

func start(t *testing.T, dir pulldir.Dir) *fixture {
	t.Helper()
	s, err := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix, s)
	h := httptest.NewServer(mux)
	t.Cleanup(func() { s.Close(); h.Close() })
	return &fixture{dir: dir, server: s, http: h}
}

func (f *fixture) client(t *testing.T, host ssh.Signer) *pullclient.Client {
	t.Helper()
	c, err := pullclient.New(f.http.URL, host, f.server.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func publish(t *testing.T, dir pulldir.Dir, host ssh.Signer, toplevel string) pulldir.Desired {
	t.Helper()
	d, err := dir.Publish(host.PublicKey(), pulldir.Desired{Toplevel: toplevel, ConfirmTimeout: 30, ActivationTimeout: 60})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDesiredOnlyForItsHost(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	a, b, stranger := newSigner(t), newSigner(t), newSigner(t)
	publish(t, f.dir, a, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a")
	publish(t, f.dir, b, "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b")
	ctx := context.Background()

	got, err := f.client(t, a).Desired(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Desired == nil || got.Desired.Toplevel != "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a" || got.CachePublicKey != f.server.CachePublicKey() {
		t.Fatalf("host a got %+v", got)
	}

	bID := pulldir.HostID(b.PublicKey())
	for _, c := range []struct {
		name, path, reason string
		signer             ssh.Signer
		status             int
	}{
		{"a asks for b's generation", pullapi.DesiredPath(bID), refusedOtherHost, a, http.StatusForbidden},
		{"a asks for b's cache", pullapi.CachePath(bID) + "/nix-cache-info", refusedOtherHost, a, http.StatusForbidden},
		{"a unknown host asks for its own", pullapi.DesiredPath(pulldir.HostID(stranger.PublicKey())), refusedUnknownHost, stranger, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.server.Refused(c.reason)
			_, _, err := f.client(t, c.signer).Do(ctx, nil, http.MethodGet, c.path, nil)
			var se *pullclient.StatusError
			if !errors.As(err, &se) || se.Status != c.status {
				t.Fatalf("got %v, want status %d", err, c.status)
			}
			if got := f.server.Refused(c.reason); got != before+1 {
				t.Fatalf("refused %s: %d, want %d", c.reason, got, before+1)
			}
		})
	}
}

// signed makes a request signed by host at the given time.
func signed(t *testing.T, base, path string, host ssh.Signer, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pullauth.SignRequest(req, nil, host, at); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSignedRequestsRefused(t *testing.T) {
	dir := pulldir.Dir{Path: t.TempDir()}
	f := start(t, dir)
	// A second server on the same directory: a replay to it is refused
	// too (the nonces are in the directory).
	g := start(t, dir)
	host := newSigner(t)
	publish(t, dir, host, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a")
	path := pullapi.DesiredPath(pulldir.HostID(host.PublicKey()))
	send := func(t *testing.T, req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	original := signed(t, f.http.URL, path, host, time.Now())
	if got := send(t, original); got != http.StatusOK {
		t.Fatalf("first request: status %d", got)
	}
	for _, c := range []struct {
		name   string
		req    func() *http.Request
		server *fixture
		reason string
	}{
		{"replayed", func() *http.Request { return cloneTo(original, f.http.URL) }, f, refusedReplay},
		{"replayed to another server", func() *http.Request { return cloneTo(original, g.http.URL) }, g, refusedReplay},
		{"stale", func() *http.Request { return signed(t, f.http.URL, path, host, time.Now().Add(-5*time.Minute)) }, f, refusedStale},
		{"from the future", func() *http.Request { return signed(t, f.http.URL, path, host, time.Now().Add(5*time.Minute)) }, f, refusedStale},
		{"path changed after signing", func() *http.Request {
			r := signed(t, f.http.URL, path, host, time.Now())
			r.URL.RawQuery = "wait=1"
			return r
		}, f, refusedBadSignature},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
			return r
		}, f, refusedUnsigned},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.server.server.Refused(c.reason)
			if got := send(t, c.req()); got != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", got)
			}
			if got := c.server.server.Refused(c.reason); got != before+1 {
				t.Fatalf("refused %s: %d, want %d", c.reason, got, before+1)
			}
		})
	}
}

func cloneTo(r *http.Request, base string) *http.Request {
	c, _ := http.NewRequest(r.Method, base+r.URL.RequestURI(), nil)
	c.Header = r.Header.Clone()
	return c
}

func TestAnswerSignedByAnotherKeyRefused(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	host := newSigner(t)
	publish(t, f.dir, host, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a")
	c := f.client(t, host)
	c.ServerKey = newSigner(t).PublicKey()
	if _, err := c.Desired(context.Background(), -1, 0); !errors.Is(err, pullclient.ErrBadAnswer) {
		t.Fatalf("got %v, want the answer refused", err)
	}
}

func TestLongPollSeesNewGeneration(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	host := newSigner(t)
	first := publish(t, f.dir, host, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a")
	type result struct {
		answer pullapi.DesiredAnswer
		err    error
	}
	done := make(chan result, 1)
	go func() {
		a, err := f.client(t, host).Desired(context.Background(), first.Generation, time.Minute)
		done <- result{a, err}
	}()
	// The poll is waiting: nothing came back while the generation stayed.
	select {
	case r := <-done:
		t.Fatalf("the long-poll answered before a new generation: %+v %v", r.answer.Desired, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	second := publish(t, f.dir, host, "/nix/store/cccccccccccccccccccccccccccccccc-c")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.answer.Desired == nil || r.answer.Desired.Generation != second.Generation {
		t.Fatalf("long-poll answered %+v, want generation %d", r.answer.Desired, second.Generation)
	}
}

func TestCacheServesOnlyTheHostsClosure(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	a, b := newSigner(t), newSigner(t)
	topA, topB := build(t, "pullserver-test-a"), build(t, "pullserver-test-b")
	publish(t, f.dir, a, topA)
	publish(t, f.dir, b, topB)
	ctx := context.Background()
	closureA, err := nixcache.Closure(ctx, topA)
	if err != nil {
		t.Fatal(err)
	}
	closureB, err := nixcache.Closure(ctx, topB)
	if err != nil {
		t.Fatal(err)
	}
	ca := f.client(t, a)
	base := pullapi.CachePath(ca.ID()) + "/"
	get := func(name string) (string, error) {
		resp, _, err := ca.Do(ctx, nil, http.MethodGet, base+name, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for _, p := range closureA {
		h := nixcache.HashPart(p.Path)
		narinfo, err := get(h + ".narinfo")
		if err != nil {
			t.Fatalf("narinfo of %s: %v", p.Path, err)
		}
		sig := ""
		for _, line := range strings.Split(narinfo, "\n") {
			if v, ok := strings.CutPrefix(line, "Sig: "); ok {
				sig = v
			}
		}
		if err := nixcache.Verify(f.server.CachePublicKey(), p.Fingerprint(), sig); err != nil {
			t.Fatalf("narinfo of %s: %v\n%s", p.Path, err, narinfo)
		}
		nar, err := get("nar/" + h + ".nar")
		if err != nil || int64(len(nar)) != p.NarSize {
			t.Fatalf("NAR of %s: %d bytes, %v; want %d", p.Path, len(nar), err, p.NarSize)
		}
	}
	for _, p := range closureB {
		h := nixcache.HashPart(p.Path)
		for _, name := range []string{h + ".narinfo", "nar/" + h + ".nar"} {
			before := f.server.Refused(refusedNotInClosure)
			_, err := get(name)
			var se *pullclient.StatusError
			if !errors.As(err, &se) || se.Status != http.StatusNotFound {
				t.Fatalf("a got %s of b's closure: %v", name, err)
			}
			if f.server.Refused(refusedNotInClosure) != before+1 {
				t.Fatalf("%s: not counted", name)
			}
		}
	}
}

func TestKeysMadeOnceAndPrivate(t *testing.T) {
	dir := pulldir.Dir{Path: t.TempDir()}
	f, g := start(t, dir), start(t, dir)
	if !keysEqual(f.server.PublicKey(), g.server.PublicKey()) || f.server.CachePublicKey() != g.server.CachePublicKey() {
		t.Fatal("two servers on one directory made different keys")
	}
	for _, name := range []string{"server-key", "cache-key"} {
		st, err := os.Stat(dir.Path + "/" + name)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", name, err, st.Mode())
		}
	}
	pub, err := pullauth.ParseServerKey(dir.Path + "/server.pub")
	if err != nil || !keysEqual(pub, f.server.PublicKey()) {
		t.Fatalf("server.pub: %v", err)
	}
	if err := os.Chmod(dir.Path+"/server-key", 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("a server-key others can read: %v", err)
	}
}

func keysEqual(a, b ssh.PublicKey) bool { return string(a.Marshal()) == string(b.Marshal()) }
