package pullserver

import (
	"context"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
)

// eventually waits until cond holds, for at most 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLongPollsWakeOnlyForTheirHost lets long-polls of three hosts wait
// together, two of them for the same host. A new generation of one host
// answers exactly that host's polls, each with that generation; the
// others wait on until their own host changes, or the server closes.
// Once no poll waits, the server watches nothing.
func TestLongPollsWakeOnlyForTheirHost(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	a, b, c := newSigner(t), newSigner(t), newSigner(t)
	first := map[string]pulldir.Desired{
		"a": publish(t, f.dir, a, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a"),
		"b": publish(t, f.dir, b, "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b"),
		"c": publish(t, f.dir, c, "/nix/store/cccccccccccccccccccccccccccccccc-c"),
	}
	type answer struct {
		host string
		d    *pulldir.Desired
		err  error
	}
	answers := make(chan answer, 4)
	for _, p := range []struct {
		host   string
		client *pullclient.Client
	}{{"a", f.client(t, a)}, {"a", f.client(t, a)}, {"b", f.client(t, b)}, {"c", f.client(t, c)}} {
		go func() {
			ans, err := p.client.Desired(context.Background(), first[p.host].Generation, time.Minute)
			answers <- answer{p.host, ans.Desired, err}
		}()
	}
	eventually(t, "the server holds the 4 long-polls", func() bool { return f.server.metrics.waiting.Load() == 4 })

	expect := func(host string, want pulldir.Desired) {
		t.Helper()
		var r answer
		select {
		case r = <-answers:
		case <-time.After(20 * time.Second):
			t.Fatalf("no long-poll answered within 20 s; want host %s's generation %d", host, want.Generation)
		}
		if r.err != nil {
			t.Fatalf("a long-poll of %s failed: %v", r.host, r.err)
		}
		if r.host != host || r.d == nil || r.d.Generation != want.Generation || r.d.Toplevel != want.Toplevel {
			t.Fatalf("a long-poll of %s answered %+v; want host %s's generation %d (%s)", r.host, r.d, host, want.Generation, want.Toplevel)
		}
	}
	quiet := func() {
		t.Helper()
		select {
		case r := <-answers:
			t.Fatalf("a long-poll of %s answered %+v, %v while its host's generation stayed", r.host, r.d, r.err)
		case <-time.After(300 * time.Millisecond):
		}
	}

	a2 := publish(t, f.dir, a, "/nix/store/dddddddddddddddddddddddddddddddd-a2")
	expect("a", a2)
	expect("a", a2)
	quiet()
	b2 := publish(t, f.dir, b, "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-b2")
	expect("b", b2)
	quiet()
	f.server.Close()
	expect("c", first["c"])

	eventually(t, "the server watches no host and its watcher has stopped", func() bool {
		w := f.server.watch
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.hosts) == 0 && !w.running && f.server.metrics.waiting.Load() == 0
	})
}
