package pulltest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/pull/nixcache"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
)

func publish(t *testing.T, dir pulldir.Dir, h *pullHost, d pulldir.Desired) pulldir.Desired {
	t.Helper()
	if d.ConfirmTimeout == 0 {
		d.ConfirmTimeout = 10
	}
	if d.ActivationTimeout == 0 {
		d.ActivationTimeout = 60
	}
	got, err := dir.Publish(h.key, d)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func seal(t *testing.T, h *pullHost, path, mode, contents string) pulldir.Secret {
	t.Helper()
	sealed, err := pullsecret.Seal(h.key, []byte(contents))
	if err != nil {
		t.Fatal(err)
	}
	return pulldir.Secret{Path: path, Mode: mode, Age: sealed}
}

// TestHostReachesItsGenerationThroughTheCache: two hosts whose stores
// hold nothing get their own systems and secrets from the server's cache;
// neither can fetch the other's generation, closure paths or secrets.
func TestHostReachesItsGenerationThroughTheCache(t *testing.T) {
	dir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, dir, 0)
	a, b := startHost(t), startHost(t)
	sysA := testhost.BuildSystem(t, testhost.System{Name: "pull-a", Healthy: true, Packages: []string{"pull-a-pkg-1.0"}})
	sysB := testhost.BuildSystem(t, testhost.System{Name: "pull-b", Packages: []string{"pull-b-pkg-1.0"}})
	const secretA = "a's database password 7f3a9c"
	publish(t, dir, a, pulldir.Desired{Toplevel: sysA,
		HealthChecks: []pulldir.HealthCheck{{Command: "test -e /run/current-system/healthy", Timeout: 5}},
		Secrets:      []pulldir.Secret{seal(t, a, "/run/keys/db-password", "0440", secretA)}})
	publish(t, dir, b, pulldir.Desired{Toplevel: sysB})
	if a.HasPath(sysA) || b.HasPath(sysB) {
		t.Fatal("a host's store held its system before the agent ran")
	}
	serverKey := filepath.Join(dir.Path, "server.pub")

	for _, c := range []struct {
		host       *pullHost
		system     string
		otherSys   string
		secretPath string
	}{{a, sysA, sysB, "/run/keys/db-password"}, {b, sysB, sysA, ""}} {
		out, code := agentOnce(t, c.host, s, serverKey)
		if code != 0 {
			t.Fatalf("agent --once exited %d:\n%s\nserver:\n%s", code, out, s.log.String())
		}
		if c.host.CurrentSystem() != c.system || c.host.ProfileSystem() != c.system || c.host.BootDefault() != c.system {
			t.Fatalf("host runs %q, profile %q, boot default %q; want %s\n%s", c.host.CurrentSystem(), c.host.ProfileSystem(), c.host.BootDefault(), c.system, out)
		}
		if c.host.HasPath(c.otherSys) {
			t.Fatalf("a host's store holds the other host's system %s", c.otherSys)
		}
		rep, ok := latestReport(t, dir, c.host)
		if !ok || rep.Result != pulldir.ResultActivated || rep.Current != c.system || rep.Generation != 1 {
			t.Fatalf("report %+v (%v), want generation 1 activated on %s", rep, ok, c.system)
		}
		if strings.Contains(out, secretA) {
			t.Fatalf("the agent's output shows the secret:\n%s", out)
		}
	}
	got, mode, err := hostFile(a, "/run/keys/db-password")
	if err != nil || got != secretA || mode != 0o440 {
		t.Fatalf("a's secret: %q mode %04o, %v", got, mode, err)
	}
	if _, _, err := hostFile(b, "/run/keys/db-password"); err == nil {
		t.Fatal("b has a's secret file")
	}
	if raw, _ := os.ReadFile(filepath.Join(dir.Path, "hosts", a.id(), "desired.json")); strings.Contains(string(raw), secretA) {
		t.Fatal("the pull directory holds the secret in clear")
	}
	if strings.Contains(s.log.String(), secretA) {
		t.Fatal("the server's log shows the secret")
	}

	// A second run finds nothing to do.
	if out, code := agentOnce(t, a, s, serverKey); code != 0 || !strings.Contains(out, "runs its desired generation") {
		t.Fatalf("second run: exit %d:\n%s", code, out)
	}

	// b, with its own key, asks for a's generation and a's paths.
	ctx := context.Background()
	cb, err := pullclient.New(s.url(), b.signer, a.key) // any server key: the request is refused first
	if err != nil {
		t.Fatal(err)
	}
	closureA, err := nixcache.Closure(ctx, sysA)
	if err != nil {
		t.Fatal(err)
	}
	refused := []string{pullapi.DesiredPath(a.id()), pullapi.CachePath(a.id()) + "/" + nixcache.HashPart(sysA) + ".narinfo"}
	for _, p := range refused {
		_, _, err := cb.Do(ctx, nil, http.MethodGet, p, nil)
		var se *pullclient.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusForbidden {
			t.Errorf("b asked for %s: %v, want 403", p, err)
		}
	}
	for _, p := range closureA {
		if strings.Contains(p.Path, "pull-b") {
			continue
		}
		for _, name := range []string{nixcache.HashPart(p.Path) + ".narinfo", "nar/" + nixcache.HashPart(p.Path) + ".nar"} {
			_, _, err := cb.Do(ctx, nil, http.MethodGet, pullapi.CachePath(b.id())+"/"+name, nil)
			var se *pullclient.StatusError
			if !errors.As(err, &se) || se.Status != http.StatusNotFound {
				t.Errorf("b got %s (of a's closure) from its own cache: %v", name, err)
			}
		}
	}
	metrics := scrape(t, s)
	for _, want := range []string{`landscaper_pull_refused_total{reason="other-host"} 2`, `landscaper_pull_refused_total{reason="not-in-closure"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
}

func scrape(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get(s.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestReplayedAndStaleRequestsRefused sends a host's signed request twice,
// and one signed ten minutes ago, to a real server.
func TestReplayedAndStaleRequestsRefused(t *testing.T) {
	dir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, dir, 0)
	h := startHost(t)
	publish(t, dir, h, pulldir.Desired{Toplevel: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"})
	signedAt := func(at time.Time) *http.Request {
		req, err := http.NewRequest(http.MethodGet, s.url()+pullapi.DesiredPath(h.id()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pullauth.SignRequest(req, nil, h.signer, at); err != nil {
			t.Fatal(err)
		}
		return req
	}
	status := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	req := signedAt(time.Now())
	again := req.Clone(context.Background())
	for _, c := range []struct {
		name string
		req  *http.Request
		want int
	}{
		{"first", req, http.StatusOK},
		{"replayed", again, http.StatusUnauthorized},
		{"stale", signedAt(time.Now().Add(-10 * time.Minute)), http.StatusUnauthorized},
	} {
		if got := status(c.req); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	metrics := scrape(t, s)
	for _, want := range []string{`landscaper_pull_refused_total{reason="replay"} 1`, `landscaper_pull_refused_total{reason="stale"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestAgentRefusesAnotherServerKey: an agent pinned to another key
// refuses the server's answers and changes nothing.
func TestAgentRefusesAnotherServerKey(t *testing.T) {
	dir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, dir, 0)
	h := startHost(t)
	sys := testhost.BuildSystem(t, testhost.System{Name: "pull-otherkey"})
	publish(t, dir, h, pulldir.Desired{Toplevel: sys})
	other := testhost.NewKeyPair(t)
	out, code := agentOnce(t, h, s, other.Public)
	if code == 0 || !strings.Contains(out, "not signed by the server key") {
		t.Fatalf("agent with another server key: exit %d:\n%s", code, out)
	}
	if h.CurrentSystem() != "" || h.HasPath(sys) {
		t.Fatalf("the host changed: runs %q, has the system: %v", h.CurrentSystem(), h.HasPath(sys))
	}
}

// TestServerStoppedAfterActivationRollsBack: the server stops while the
// host activates a new generation; the host cannot reach it over a new
// connection within confirmTimeout and re-activates its previous system
// on its own, and reports that once the server is back.
func TestServerStoppedAfterActivationRollsBack(t *testing.T) {
	dir := pulldir.Dir{Path: t.TempDir()}
	s := startServer(t, dir, 0)
	h := startHost(t)
	v1 := testhost.BuildSystem(t, testhost.System{Name: "pull-stop-v1"})
	gated := gatedSystem(t)
	serverKey := filepath.Join(dir.Path, "server.pub")
	publish(t, dir, h, pulldir.Desired{Toplevel: v1})
	if out, code := agentOnce(t, h, s, serverKey); code != 0 {
		t.Fatalf("first generation: exit %d\n%s", code, out)
	}
	publish(t, dir, h, pulldir.Desired{Toplevel: gated, ConfirmTimeout: 3})

	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, code := agentOnce(t, h, s, serverKey)
		done <- result{out, code}
	}()
	waitFor(t, "the activation of the new generation", time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(h.Dir, "run", "gated-activating"))
		return err == nil
	})
	s.stop(t)
	if err := os.WriteFile(filepath.Join(h.Dir, "run", "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code == 0 {
		t.Fatalf("the agent reported success with the server gone:\n%s", r.out)
	}
	if h.CurrentSystem() != v1 || h.ProfileSystem() != v1 || h.BootDefault() != v1 {
		t.Fatalf("after the rollback the host runs %q, profile %q, boot default %q; want %s\n%s", h.CurrentSystem(), h.ProfileSystem(), h.BootDefault(), v1, r.out)
	}
	acts := h.Activations()
	if len(acts) < 2 || acts[len(acts)-2] != gated+" test" || acts[len(acts)-1] != v1+" test" {
		t.Fatalf("activations %v: want the gated system's test, then v1's", acts)
	}

	// Back up: the kept report arrives, and the failed generation is not
	// tried again.
	s2 := startServer(t, dir, s.port)
	out, code := agentOnce(t, h, s2, serverKey)
	if code == 0 {
		t.Fatalf("the agent says the host runs the generation it rolled back:\n%s", out)
	}
	rep, ok := latestReport(t, dir, h)
	if !ok || rep.Generation != 2 || rep.Result != pulldir.ResultRolledBack || !strings.Contains(rep.Reason, "new connection") || rep.Current != v1 {
		t.Fatalf("report %+v, want generation 2 rolled back for want of a new connection", rep)
	}
	if h.CurrentSystem() != v1 {
		t.Fatalf("the second run changed the host: %s", h.CurrentSystem())
	}
}
