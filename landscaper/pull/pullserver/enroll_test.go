package pullserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullclient"
)

const roleToken = "0123456789abcdef-role-token"

// TestEnrollment: a machine with the role's token enrolls and then gets
// the role's generation; a wrong token, an unknown role, a host of
// another role and a host nixos.pull declared are refused, counted, and
// enroll nothing.
func TestEnrollment(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	ctx := context.Background()
	for _, role := range []string{"web", "db"} {
		if err := f.dir.SetRoleEnrollKey(role, pullauth.EnrollKey(roleToken+role)); err != nil {
			t.Fatal(err)
		}
	}
	gen, err := f.dir.SetRoleTarget("web", pulldir.Desired{Toplevel: "/nix/store/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww-web", ConfirmTimeout: 30, ActivationTimeout: 60})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.dir.SetRoleDesired("web", gen); err != nil {
		t.Fatal(err)
	}

	cattle := f.client(t, newSigner(t))
	if _, err := cattle.Desired(ctx, -1, 0); !pullclient.IsUnknownHost(err) {
		t.Fatalf("before enrolling: %v, want unknown host", err)
	}
	if err := cattle.Enroll(ctx, "web", roleToken+"web"); err != nil {
		t.Fatal(err)
	}
	if err := cattle.Enroll(ctx, "web", roleToken+"web"); err != nil {
		t.Fatalf("enrolling again in the same role: %v", err)
	}
	got, err := cattle.Desired(ctx, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Desired == nil || got.Desired.Toplevel != gen.Toplevel || got.Desired.Generation != 1 {
		t.Fatalf("the enrolled host got %+v, want the role's generation 1", got.Desired)
	}
	if hosts, err := f.dir.RoleHosts("web"); err != nil || len(hosts) != 1 || hosts[0].ID != cattle.ID() {
		t.Fatalf("hosts of web: %v %v", hosts, err)
	}

	declared := newSigner(t)
	publish(t, f.dir, declared, "/nix/store/dddddddddddddddddddddddddddddddd-d")
	for _, c := range []struct {
		name, role, token, reason string
		client                    *pullclient.Client
		status                    int
	}{
		{"wrong token", "web", "not-the-token-0123456789", refusedBadToken, f.client(t, newSigner(t)), http.StatusForbidden},
		{"another role's token", "web", roleToken + "db", refusedBadToken, f.client(t, newSigner(t)), http.StatusForbidden},
		{"unknown role", "cache", roleToken + "web", refusedUnknownRole, f.client(t, newSigner(t)), http.StatusNotFound},
		{"enrolled in another role", "db", roleToken + "db", refusedEnrolledElsewhere, cattle, http.StatusConflict},
		{"declared by nixos.pull", "web", roleToken + "web", refusedEnrolledElsewhere, f.client(t, declared), http.StatusConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.server.Refused(c.reason)
			err := c.client.Enroll(ctx, c.role, c.token)
			var se *pullclient.StatusError
			if !errors.As(err, &se) || se.Status != c.status {
				t.Fatalf("enroll: %v, want status %d", err, c.status)
			}
			if got := f.server.Refused(c.reason); got != before+1 {
				t.Fatalf("refused %s: %d, want %d", c.reason, got, before+1)
			}
			if role, ok := f.dir.HostRole(c.client.ID()); c.client != cattle && ok {
				t.Fatalf("the refused host is in role %s", role)
			}
		})
	}
	if role, _ := f.dir.HostRole(cattle.ID()); role != "web" {
		t.Fatalf("the enrolled host's role is %q after the refusals", role)
	}
	if d, ok, _ := f.dir.Desired(pulldir.HostID(declared.PublicKey())); !ok || d.Toplevel != "/nix/store/dddddddddddddddddddddddddddddddd-d" {
		t.Fatalf("the declared host's generation changed: %+v", d)
	}

	// An enrollment request is signed like any other: a replay is refused.
	stranger := f.client(t, newSigner(t))
	body := []byte(`{"proof":"` + pullauth.EnrollProof(pullauth.EnrollKey(roleToken+"web"), "web", stranger.ID()) + `"}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.http.URL+pullapi.EnrollPath("web"), nil)
	if _, err := pullauth.SignRequest(req, body, stranger.HostKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusNoContent, http.StatusUnauthorized} {
		r := req.Clone(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("send %d of one signed enrollment: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

// TestLongPollSeesTheRoleMove: a host long-polling on its role's
// generation learns of the next one when a rollout puts it on the host,
// and when it becomes the role's.
func TestLongPollSeesTheRoleMove(t *testing.T) {
	f := start(t, pulldir.Dir{Path: t.TempDir()})
	ctx := context.Background()
	if err := f.dir.SetRoleEnrollKey("web", pullauth.EnrollKey(roleToken)); err != nil {
		t.Fatal(err)
	}
	set := func(top string) pulldir.Desired {
		g, err := f.dir.SetRoleTarget("web", pulldir.Desired{Toplevel: top})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g1 := set("/nix/store/11111111111111111111111111111111-one")
	if err := f.dir.SetRoleDesired("web", g1); err != nil {
		t.Fatal(err)
	}
	c := f.client(t, newSigner(t))
	if err := c.Enroll(ctx, "web", roleToken); err != nil {
		t.Fatal(err)
	}
	g2 := set("/nix/store/22222222222222222222222222222222-two")
	for _, step := range []struct {
		name  string
		known int64
		move  func()
	}{
		{"a rollout puts the host on generation 2", 1, func() { _ = f.dir.SetHostDesired(c.ID(), g2) }},
		{"generation 3 becomes the role's", 2, func() {
			g3 := set("/nix/store/33333333333333333333333333333333-three")
			_ = f.dir.SetRoleDesired("web", g3)
			_ = f.dir.ClearHostDesired(c.ID())
		}},
	} {
		t.Run(step.name, func(t *testing.T) {
			done := make(chan int64, 1)
			go func() {
				a, err := c.Desired(ctx, step.known, 30*time.Second)
				if err != nil || a.Desired == nil {
					done <- -1
					return
				}
				done <- a.Desired.Generation
			}()
			time.Sleep(100 * time.Millisecond)
			step.move()
			select {
			case g := <-done:
				if g != step.known+1 {
					t.Fatalf("the long-poll answered generation %d, want %d", g, step.known+1)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the long-poll did not answer the move")
			}
		})
	}
}
