package bootserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// canonicalName is the name the server gives to what r asks for.
func canonicalName(r request) string {
	switch r.kind {
	case kindBootScript:
		return "boot.ipxe"
	case kindIPXE:
		return r.binary
	case kindMachineScript:
		return bootentry.ScriptPath(r.mac)
	case kindKernel:
		return versionFileName(r.mac, r.version, "kernel")
	case kindInitrd:
		return versionFileName(r.mac, r.version, fmt.Sprintf("initrd/%d", r.index))
	case kindExtra:
		return versionFileName(r.mac, r.version, bootentry.ExtraName)
	}
	return ""
}

// inside reports whether path is dir or lies below it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// FuzzParseName asks a server with one entry (a kernel, two initrds and an
// extra archive, in a directory of their own beside the boot directory and
// canaries) for arbitrary names; "@V" in a name stands for the entry's
// version ID. parseName never panics; a name it refuses opens nothing; a
// name it accepts holds no traversal or odd byte, has exactly one
// canonical name that parses to the same request, is read from the entry's
// own directory inside the boot directory, and opens nothing but that
// entry's files (the very file it names) or an iPXE binary. The seeds are
// below and in testdata/fuzz/FuzzParseName.
func FuzzParseName(f *testing.F) {
	bootDir, ipxeDir, artifacts := f.TempDir(), f.TempDir(), f.TempDir()
	for name := range ipxeBinaries {
		if err := os.WriteFile(filepath.Join(ipxeDir, name), ipxeBinaryContent(name), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	artifact := func(name, data string) string {
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			f.Fatal(err)
		}
		return p
	}
	for _, c := range []string{filepath.Join(bootDir, "canary"), filepath.Join(filepath.Dir(bootDir), "canary"), filepath.Join(ipxeDir, "canary"), artifact("canary", "canary")} {
		if err := os.WriteFile(c, []byte("canary"), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	store := bootentry.Store{Dir: bootDir}
	v, err := store.Put(bootentry.Entry{
		MAC:     testMAC,
		Kernel:  artifact("bzImage", "the kernel"),
		Initrds: []string{artifact("initrd0", "initrd zero"), artifact("initrd1", "initrd one")},
		Cmdline: "console=ttyS0",
	}, []byte("the extra archive"))
	if err != nil {
		f.Fatal(err)
	}
	// What each request for the entry's version must serve.
	want := map[kind]map[int]string{
		// Initrds are served padded with zeros to a multiple of 4 bytes.
		kindKernel: {0: "the kernel"}, kindInitrd: {0: "initrd zero\x00", 1: "initrd one\x00\x00"}, kindExtra: {0: "the extra archive"},
	}
	allowed := map[string]bool{v.Kernel: true, v.Initrds[0]: true, v.Initrds[1]: true, v.ExtraPath(): true}
	for name := range ipxeBinaries {
		allowed[filepath.Join(ipxeDir, name)] = true
	}
	var opened []string
	s := &Server{
		cfg: Config{BootDir: bootDir, IPXEDir: ipxeDir, Open: func(path string) (*os.File, error) {
			opened = append(opened, path)
			return os.Open(path)
		}},
		store: store,
		base:  "../",
	}
	// The extra archive goes only to the client that fetched the script
	// first: this one.
	client := func() *record { return &record{protocol: "tftp", remote: "127.0.0.1:4011"} }
	if c, err := s.resolve(request{kind: kindMachineScript, mac: testMAC}, client()); err != nil {
		f.Fatalf("the machine script: %v", err)
	} else {
		c.Close()
	}

	for _, seed := range []string{
		"boot.ipxe", "/ipxe.efi", "undionly.kpxe", "machine/52-54-00-12-34-56.ipxe", "machine/5254.0012.3456.ipxe",
		"machine/01-aa-bb-cc-dd-ee-ff.ipxe", "v/52-54-00-12-34-56/@V/kernel", "v/52:54:00:12:34:56/@V/initrd/1",
		"v/525400123456/@V/initrd/2", "v/52-54-00-12-34-56/@V/extra.cpio", "v/52-54-00-12-34-56/@V/entry.json",
		"v/52-54-00-12-34-56/0123456789abcdef0123/kernel", "../canary", "v/52-54-00-12-34-56/@V/../../../canary",
		"ipxe.efi/../canary", "%2e%2e/canary", "machine/..%2fcanary.ipxe", "canary\x00boot.ipxe",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		name = strings.ReplaceAll(name, "@V", v.ID)
		opened = opened[:0]
		r, err := parseName(name)
		if err != nil {
			if errors.Is(err, errBadName) == errors.Is(err, errUnknownName) {
				t.Fatalf("parseName(%q): %v, want either errBadName or errUnknownName", name, err)
			}
			return
		}
		for i := 0; i < len(name); i++ {
			if !nameByte(name[i]) {
				t.Fatalf("parseName(%q) accepted the byte %#x", name, name[i])
			}
		}
		if strings.Contains(name, "..") || strings.Contains(name, "//") {
			t.Fatalf("parseName(%q) accepted a traversal", name)
		}
		// One canonical name per request.
		canon := canonicalName(r)
		if back, err := parseName(canon); err != nil || back != r {
			t.Fatalf("parseName(%q) = %+v, whose name %q parses to %+v, %v", name, r, canon, back, err)
		}
		if r.mac != "" {
			if m, err := bootentry.NormalizeMAC(r.mac); err != nil || m != r.mac {
				t.Fatalf("parseName(%q) = MAC %q, not normalised", name, r.mac)
			}
		}
		// The entry it reads is inside the boot directory.
		switch r.kind {
		case kindMachineScript:
			if p := filepath.Join(bootDir, "entries", bootentry.FileName(r.mac)); !inside(p, filepath.Join(bootDir, "entries")) || filepath.Dir(p) != filepath.Join(bootDir, "entries") {
				t.Fatalf("parseName(%q) reads the entry %s", name, p)
			}
		case kindKernel, kindInitrd, kindExtra:
			versions := filepath.Join(bootDir, "versions")
			if p := filepath.Join(versions, bootentry.FileName(r.mac), r.version); !inside(p, versions) || filepath.Dir(filepath.Dir(p)) != versions {
				t.Fatalf("parseName(%q) reads the version %s", name, p)
			}
		case kindIPXE:
			if p := filepath.Join(ipxeDir, r.binary); filepath.Dir(p) != ipxeDir {
				t.Fatalf("parseName(%q) opens %s", name, p)
			}
		}
		c, err := s.resolve(r, client())
		if r.kind == kindExtra {
			// Each serving is written to the fetch record, which is
			// bounded; the fuzzer asks more often than any machine.
			_ = os.Remove(filepath.Join(v.FetchDir(), "events"))
		}
		for _, p := range opened {
			if !allowed[p] {
				t.Fatalf("the request %q opened %s", name, p)
			}
		}
		if err != nil {
			if !errors.Is(err, errUnknownName) {
				t.Fatalf("resolve(%q): %v, want errUnknownName", name, err)
			}
			return
		}
		defer c.Close()
		body, err := io.ReadAll(c.body)
		if err != nil {
			t.Fatalf("read %q: %v", name, err)
		}
		switch r.kind {
		case kindKernel, kindInitrd, kindExtra:
			if r.mac != testMAC || r.version != v.ID || string(body) != want[r.kind][r.index] {
				t.Fatalf("the request %q (%+v) served %q", name, r, body)
			}
		case kindIPXE:
			if !bytes.Equal(body, ipxeBinaryContent(r.binary)) {
				t.Fatalf("the request %q served %q", name, body)
			}
		case kindMachineScript, kindBootScript:
			if !bytes.HasPrefix(body, []byte("#!ipxe\n")) || (r.kind == kindMachineScript && !bytes.Contains(body, []byte(r.mac))) {
				t.Fatalf("the request %q served %q", name, body)
			}
		}
	})
}

// ipxeSpace is iPXE's isspace: the ASCII whitespace of the C locale.
func ipxeSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

// FuzzMachineScript renders a machine's script with an arbitrary kernel
// command line and checks it the way iPXE reads it: a command line the
// server refuses is refused for a reason checkCmdline gives; one it
// accepts leaves the script exactly as with a plain command line except
// for the kernel line, whose words (split as iPXE splits them) are the
// kernel command, the command line's own words, and then "|| goto retry"
// as the only command separator, with no comment and no settings
// expansion. The seeds are below and in testdata/fuzz/FuzzMachineScript.
func FuzzMachineScript(f *testing.F) {
	for _, seed := range []struct {
		cmdline string
		initrds uint8
		extra   bool
	}{
		{"console=ttyS0,115200 init=/nix/store/abc-nixos-system/init loglevel=4", 1, false},
		{"", 0, false},
		{"a || shell", 2, true},
		{"a\nchain http://evil/x", 1, true},
		{"a ${net0/mac}", 1, false},
		{"a #comment", 1, false},
		{"a\u00a0||\u00a0b", 1, false},
		{"  spaced  out  ", 3, true},
		{"x;y a&&b c||d", 1, false},
		{"ends in a backslash\\", 1, false},
		{":label", 0, false},
	} {
		f.Add(seed.cmdline, seed.initrds, seed.extra)
	}
	const version = "0123456789abcdef0123"
	entry := func(cmdline string, initrds uint8, extra bool) *bootentry.Version {
		v := &bootentry.Version{Entry: bootentry.Entry{MAC: testMAC, Kernel: "/k", Cmdline: cmdline, HasExtra: extra}, ID: version, Dir: "/boot/versions/x"}
		for i := range int(initrds % 4) {
			v.Initrds = append(v.Initrds, fmt.Sprintf("/initrd%d", i))
		}
		return v
	}
	f.Fuzz(func(t *testing.T, cmdline string, initrds uint8, extra bool) {
		for _, base := range []string{"../", "http://boot.example:8069/"} {
			got, err := renderMachineScript(entry(cmdline, initrds, extra), base)
			if err != nil {
				if checkCmdline(cmdline) == nil {
					t.Fatalf("renderMachineScript refused %q although checkCmdline accepts it: %v", cmdline, err)
				}
				return
			}
			ref, err := renderMachineScript(entry("reference", initrds, extra), base)
			if err != nil {
				t.Fatal(err)
			}
			gotLines, refLines := strings.Split(string(got), "\n"), strings.Split(string(ref), "\n")
			if len(gotLines) != len(refLines) {
				t.Fatalf("the command line %q changes the script's lines:\n%s", cmdline, got)
			}
			kernel := -1
			for i := range refLines {
				if strings.HasPrefix(refLines[i], "kernel ") {
					kernel = i
					continue
				}
				if gotLines[i] != refLines[i] {
					t.Fatalf("the command line %q changes line %d of the script: %q, not %q", cmdline, i+1, gotLines[i], refLines[i])
				}
			}
			if kernel < 0 {
				t.Fatalf("no kernel line in\n%s", ref)
			}
			line := gotLines[kernel]
			if strings.Contains(line, "${") {
				t.Fatalf("the command line %q puts a settings expansion into %q", cmdline, line)
			}
			words := strings.FieldsFunc(line, ipxeSpace)
			refWords := strings.FieldsFunc(refLines[kernel], ipxeSpace)
			// The reference's words: kernel --name kernel <url>
			// initrd=... reference || goto retry.
			head := refWords[:len(refWords)-4]
			cmdWords := strings.FieldsFunc(cmdline, ipxeSpace)
			wantWords := append(append(append([]string{}, head...), cmdWords...), "||", "goto", "retry")
			if strings.Join(words, "\x00") != strings.Join(wantWords, "\x00") {
				t.Fatalf("the kernel line with command line %q is %q, want the words %q", cmdline, line, wantWords)
			}
			for i, w := range words[:len(words)-3] {
				if w == "||" || w == "&&" || w == ";" || strings.HasPrefix(w, "#") {
					t.Fatalf("the command line %q puts the iPXE word %q at word %d of %q", cmdline, w, i, line)
				}
			}
		}
	})
}
