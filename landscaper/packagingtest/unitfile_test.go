package packagingtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serviceUnit is a module's systemd.services.<name>, as eval-module.nix
// returns it (mkIf and mkDefault resolved).
type serviceUnit struct {
	Description      string            `json:"description"`
	Documentation    []string          `json:"documentation"`
	After            []string          `json:"after"`
	Wants            []string          `json:"wants"`
	WantedBy         []string          `json:"wantedBy"`
	Path             []string          `json:"path"`
	Environment      map[string]string `json:"environment"`
	RestartIfChanged *bool             `json:"restartIfChanged"`
	UnitConfig       map[string]any    `json:"unitConfig"`
	ServiceConfig    map[string]any    `json:"serviceConfig"`
}

// unitFile writes the unit file NixOS would make of u (nixpkgs'
// systemd-lib: the [Unit] dependencies space-separated, PATH from path's
// bin and sbin directories, X-RestartIfChanged, then each
// serviceConfig/unitConfig setting a line per value, true and false
// spelled out), with the [Install] section NixOS expresses as links.
func (u serviceUnit) unitFile() string {
	var b strings.Builder
	b.WriteString("[Unit]\n")
	line := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	if u.Description != "" {
		line("Description", u.Description)
	}
	for _, d := range []struct {
		key    string
		values []string
	}{{"Documentation", u.Documentation}, {"After", u.After}, {"Wants", u.Wants}} {
		if len(d.values) > 0 {
			line(d.key, strings.Join(d.values, " "))
		}
	}
	settings(&b, u.UnitConfig)
	b.WriteString("\n[Service]\n")
	env := map[string]string{}
	for k, v := range u.Environment {
		env[k] = v
	}
	if len(u.Path) > 0 {
		var dirs []string
		for _, sub := range []string{"bin", "sbin"} {
			for _, p := range u.Path {
				dirs = append(dirs, p+"/"+sub)
			}
		}
		env["PATH"] = strings.Join(dirs, ":")
	}
	for _, k := range sortedKeys(env) {
		line("Environment", strconv.Quote(k+"="+env[k]))
	}
	if u.RestartIfChanged != nil && !*u.RestartIfChanged {
		line("X-RestartIfChanged", "false")
	}
	settings(&b, u.ServiceConfig)
	if len(u.WantedBy) > 0 {
		b.WriteString("\n[Install]\n")
		line("WantedBy", strings.Join(u.WantedBy, " "))
	}
	return b.String()
}

// settings writes a section's settings as NixOS's attrsToSection does.
func settings(b *strings.Builder, m map[string]any) {
	for _, k := range sortedKeys(m) {
		values, ok := m[k].([]any)
		if !ok {
			values = []any{m[k]}
		}
		for _, v := range values {
			var s string
			switch v := v.(type) {
			case bool:
				s = strconv.FormatBool(v)
			case float64:
				s = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				s = fmt.Sprint(v)
			}
			fmt.Fprintf(b, "%s=%s\n", k, s)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// verifyUnit writes u's unit file as name into a temporary directory,
// with the package's bin/landscaper replaced by the built binary (which
// exists), and runs `systemd-analyze verify` on it. systemd accepts a
// unit with unknown settings or values it cannot parse (it ignores
// them, with a warning): anything it says fails the test, as does its
// exit status.
func verifyUnit(t *testing.T, name string, u serviceUnit) string {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not on PATH (scripts/install-deps.sh installs systemd): %v", err)
	}
	text := strings.ReplaceAll(u.unitFile(), fakeLandscaper+"/bin/landscaper", landscaperBinary(t))
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s\nthe unit:\n%s", name, err, out.String(), text)
	}
	return text
}

func TestUnitFileRendering(t *testing.T) {
	no := false
	u := serviceUnit{
		Description:      "d",
		After:            []string{"a.target", "b.service"},
		Path:             []string{"/p", "/q"},
		RestartIfChanged: &no,
		UnitConfig:       map[string]any{"StartLimitIntervalSec": float64(0)},
		ServiceConfig:    map[string]any{"ExecStart": `"/bin/x" "a b"`, "NoNewPrivileges": true, "RestrictAddressFamilies": []any{"AF_UNIX", "AF_INET"}},
		WantedBy:         []string{"multi-user.target"},
	}
	want := `[Unit]
Description=d
After=a.target b.service
StartLimitIntervalSec=0

[Service]
Environment="PATH=/p/bin:/q/bin:/p/sbin:/q/sbin"
X-RestartIfChanged=false
ExecStart="/bin/x" "a b"
NoNewPrivileges=true
RestrictAddressFamilies=AF_UNIX
RestrictAddressFamilies=AF_INET

[Install]
WantedBy=multi-user.target
`
	if got := u.unitFile(); got != want {
		t.Errorf("unit file\n%s\nwant\n%s", got, want)
	}
}

// TestModuleUnitVerifies checks the boot server's unit, with every
// setting the module can make, with systemd-analyze.
func TestModuleUnitVerifies(t *testing.T) {
	r := evalModule(t, map[string]map[string]any{
		"defaults": {"enable": true},
		"all": {
			"enable":       true,
			"openFirewall": true,
			"httpUrl":      "http://192.0.2.10:8069",
			"bootDir":      "/srv/boot%dir$x",
			"pullDir":      "/srv/pull dir%p",
			"extraArgs":    []string{"--max-transfers=128"},
		},
	})
	for name, c := range r.Cases {
		if c.Unit == nil {
			t.Fatalf("%s: no systemd.services.landscaper", name)
		}
		verifyUnit(t, "landscaper.service", *c.Unit)
	}
}

// TestModulePullDirTmpfiles runs systemd-tmpfiles on the rule the boot
// server's module makes for its pull directory (an odd name), under a
// temporary root: it makes the directory with mode 0750, and gives an
// existing one that mode without touching what it holds.
func TestModulePullDirTmpfiles(t *testing.T) {
	const pullDir = "/srv/pull dir%p$x"
	c := evalModule(t, map[string]map[string]any{"c": {"enable": true, "pullDir": pullDir, "user": "root", "group": "root"}}).Cases["c"]
	if len(c.Tmpfiles) != 1 {
		t.Fatalf("tmpfiles rules %q, want one for the pull directory", c.Tmpfiles)
	}
	tmpfiles, err := exec.LookPath("systemd-tmpfiles")
	if err != nil {
		t.Fatalf("systemd-tmpfiles is not on PATH (scripts/install-deps.sh installs systemd): %v", err)
	}
	conf := filepath.Join(t.TempDir(), "landscaper.conf")
	if err := os.WriteFile(conf, []byte(c.Tmpfiles[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, existing := range []bool{false, true} {
		root := t.TempDir()
		dir := filepath.Join(root, pullDir)
		if existing {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "server.pub"), []byte("kept"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(tmpfiles, "--create", "--root="+root, conf).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-tmpfiles --create %q: %v\n%s", c.Tmpfiles[0], err, out)
		}
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
			t.Errorf("existing %v: after systemd-tmpfiles, %q is %v (%v), want a directory of mode 0750", existing, pullDir, st, err)
		}
		if existing {
			if b, err := os.ReadFile(filepath.Join(dir, "server.pub")); err != nil || string(b) != "kept" {
				t.Errorf("systemd-tmpfiles changed what the pull directory holds: %q, %v", b, err)
			}
		}
	}
}
