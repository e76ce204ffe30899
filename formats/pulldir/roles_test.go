package pulldir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEnrolledHostFollowsItsRole: an enrolled host gets its role's
// generation, its own while a rollout put one there, and the role's again
// once cleared; the stamp long-polls watch changes with either file.
func TestEnrolledHostFollowsItsRole(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	key := hostKey(t)
	id := HostID(key)
	if _, err := d.Enroll("web", key, time.Now()); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("enroll in a role that does not exist: %v", err)
	}
	if err := d.SetRoleEnrollKey("web", []byte("k")); err != nil {
		t.Fatal(err)
	}
	added, err := d.Enroll("web", key, time.Now())
	if err != nil || !added || !d.Known(id) {
		t.Fatalf("enroll: %v %v, known %v", added, err, d.Known(id))
	}
	if added, err := d.Enroll("web", key, time.Now()); err != nil || added {
		t.Fatalf("enroll again: %v %v", added, err)
	}
	if _, ok, err := d.Desired(id); ok || err != nil {
		t.Fatalf("a generation before the role has one: %v %v", ok, err)
	}
	stamps := map[string]bool{d.DesiredStamp(id): true}
	step := func(what string, want string) {
		t.Helper()
		got, ok, err := d.Desired(id)
		if err != nil || !ok || got.Toplevel != want {
			t.Fatalf("%s: desired %+v %v %v, want %s", what, got, ok, err, want)
		}
		s := d.DesiredStamp(id)
		if stamps[s] {
			t.Fatalf("%s: the stamp %q did not change", what, s)
		}
		stamps[s] = true
	}
	g1, err := d.SetRoleTarget("web", Desired{Toplevel: "/nix/store/one"})
	if err != nil || g1.Generation != 1 {
		t.Fatalf("target: %+v %v", g1, err)
	}
	if err := d.SetRoleDesired("web", g1); err != nil {
		t.Fatal(err)
	}
	step("the role's generation", "/nix/store/one")
	g2, _ := d.SetRoleTarget("web", Desired{Toplevel: "/nix/store/two"})
	if g2.Generation != 2 {
		t.Fatalf("second target: generation %d", g2.Generation)
	}
	if err := d.SetHostDesired(id, g2); err != nil {
		t.Fatal(err)
	}
	step("put on generation 2 by a rollout", "/nix/store/two")
	if err := d.SetRoleDesired("web", g2); err != nil {
		t.Fatal(err)
	}
	if err := d.ClearHostDesired(id); err != nil {
		t.Fatal(err)
	}
	step("following the role again", "/nix/store/two")

	if _, err := d.Publish(key, Desired{Toplevel: "/nix/store/declared"}); err == nil {
		t.Fatal("nixos.pull published for an enrolled host")
	}
	if err := d.SetRoleEnrollKey("db", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll("db", key, time.Now()); !errors.Is(err, ErrEnrolledElsewhere) {
		t.Fatalf("enroll in a second role: %v", err)
	}
	declared := hostKey(t)
	if _, err := d.Publish(declared, Desired{Toplevel: "/nix/store/declared"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll("web", declared, time.Now()); !errors.Is(err, ErrEnrolledElsewhere) {
		t.Fatalf("enroll a declared host: %v", err)
	}
	if _, ok := d.HostRole(HostID(declared)); ok {
		t.Fatal("the declared host kept a role")
	}
	hosts, err := d.RoleHosts("web")
	if err != nil || len(hosts) != 1 || hosts[0].ID != id {
		t.Fatalf("hosts of web: %+v %v", hosts, err)
	}
	if err := d.ForgetRole("web"); err != nil {
		t.Fatal(err)
	}
	if d.Known(id) || !d.Known(HostID(declared)) {
		t.Fatalf("after forgetting the role: enrolled host known %v, declared host known %v", d.Known(id), d.Known(HostID(declared)))
	}
}

func TestMarkSeen(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	key := hostKey(t)
	if err := d.SetRoleEnrollKey("web", []byte("k")); err != nil {
		t.Fatal(err)
	}
	enrolledAt := time.Now().Add(-time.Hour)
	if _, err := d.Enroll("web", key, enrolledAt); err != nil {
		t.Fatal(err)
	}
	seen := func() time.Time {
		hosts, err := d.RoleHosts("web")
		if err != nil || len(hosts) != 1 {
			t.Fatalf("hosts: %v %v", hosts, err)
		}
		return hosts[0].LastSeen
	}
	if got := seen(); !got.Equal(enrolledAt.UTC()) {
		t.Fatalf("last seen before any request: %v, want the enrollment %v", got, enrolledAt)
	}
	now := time.Now().Truncate(time.Second)
	d.MarkSeen(HostID(key), now)
	if got := seen(); !got.Equal(now) {
		t.Fatalf("last seen %v, want %v", got, now)
	}
	d.MarkSeen(HostID(key), now.Add(SeenEvery/2))
	if got := seen(); !got.Equal(now) {
		t.Fatalf("a request within SeenEvery moved the mark to %v", got)
	}
}

func TestValidRole(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{{"web", true}, {"web-1.eu_2", true}, {"", false}, {"Web", false}, {"-web", false}, {"../x", false}, {"a/b", false}, {string(make([]byte, 64)), false}} {
		if err := ValidRole(c.name); (err == nil) != c.ok {
			t.Errorf("ValidRole(%q) = %v", c.name, err)
		}
	}
}

// TestEnrollmentCutShortIsFinished: a host whose enrollment stopped after
// its role file was written is enrolled whole by its next try.
func TestEnrollmentCutShortIsFinished(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	key := hostKey(t)
	id := HostID(key)
	if err := d.SetRoleEnrollKey("web", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll("web", key, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"host.pub", "enrolled.json"} {
		if err := os.Remove(filepath.Join(d.Path, "hosts", id, f)); err != nil {
			t.Fatal(err)
		}
	}
	if d.Known(id) {
		t.Fatal("known without host.pub")
	}
	added, err := d.Enroll("web", key, time.Now())
	if err != nil || !added || !d.Known(id) {
		t.Fatalf("second enrollment: %v %v, known %v", added, err, d.Known(id))
	}
	if hosts, _ := d.RoleHosts("web"); len(hosts) != 1 {
		t.Fatalf("hosts: %v", hosts)
	}
}
