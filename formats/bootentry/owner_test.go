package bootentry

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestOwnedEntries(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	e := Entry{MAC: "52:54:00:12:34:56", Kernel: "/nix/store/k", Initrds: []string{"/nix/store/i"}}
	mine, _ := NewToken()
	theirs, _ := NewToken()
	v1, err := s.PutOwned(e, nil, Owner{Token: mine, Member: "netboot"})
	if err != nil {
		t.Fatal(err)
	}
	// Another owner can neither write nor delete the entry, in any
	// notation of the MAC, and the entry stays as it was.
	other := e
	other.MAC, other.Cmdline = "52-54-00-12-34-56", "other"
	var owned *OwnedError
	if _, err := s.PutOwned(other, nil, Owner{Token: theirs, Member: "netboot"}); !errors.As(err, &owned) || owned.Owner.Member != "netboot" ||
		!strings.Contains(err.Error(), "another deployment") {
		t.Fatalf("PutOwned by another owner: %v", err)
	}
	if err := s.DeleteOwned("52:54:00:12:34:56", theirs); !errors.As(err, &owned) {
		t.Fatalf("DeleteOwned by another owner: %v", err)
	}
	if cur, err := s.Get(e.MAC); err != nil || cur.ID != v1.ID {
		t.Fatalf("the entry changed: %v, %v", cur, err)
	}
	// Its owner writes and deletes; the owner record goes with the entry.
	if _, err := s.PutOwned(other, nil, Owner{Token: mine, Member: "netboot"}); err != nil {
		t.Fatalf("PutOwned by the owner: %v", err)
	}
	if err := s.DeleteOwned(e.MAC, mine); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Owner(e.MAC); !errors.Is(err, ErrNotFound) {
		t.Fatalf("owner after delete: %v", err)
	}
	// An entry without an owner (written before owners existed) is taken
	// over by the next writer.
	if _, err := s.Put(e, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutOwned(other, nil, Owner{Token: theirs, Member: "b"}); err != nil {
		t.Fatalf("PutOwned over an ownerless entry: %v", err)
	}
	if o, err := s.Owner(e.MAC); err != nil || o.Token != theirs {
		t.Fatalf("owner = %v, %v", o, err)
	}
	// A planted link at the owner record is not followed.
	if err := os.Remove(s.ownerPath(e.MAC)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", s.ownerPath(e.MAC)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Owner(e.MAC); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("a link at the owner record was read: %v", err)
	}
}
