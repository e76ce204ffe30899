package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivateSSHDir: the directory for Copy's key files is made, private,
// under the first base whose path NIX_SSHOPTS carries unchanged and that
// others cannot rename things in; when none will do, the error names each
// base and what is wrong with it and says how to fix it.
func TestPrivateSSHDir(t *testing.T) {
	root := t.TempDir()
	mkdir := func(name string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := mkdir("plain", 0o700)
	spaced := mkdir("with space", 0o700)
	percent := mkdir("pct%d", 0o700)
	quoted := mkdir(`it's`, 0o700)
	open := mkdir("open", 0o777)
	group := mkdir("group", 0o770)
	sticky := mkdir("sticky", 0o777|os.ModeSticky)
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		bases []string
		// want is the base the directory is made in; "" if none will do,
		// and then wantErr are in the error.
		want    string
		wantErr []string
	}{
		{name: "plain TMPDIR", bases: []string{plain, sticky}, want: plain},
		{name: "TMPDIR with a space", bases: []string{spaced, plain}, want: plain},
		{name: "TMPDIR with a percent sign", bases: []string{percent, plain}, want: plain},
		{name: "TMPDIR with a quote", bases: []string{quoted, plain}, want: plain},
		{name: "relative TMPDIR", bases: []string{"tmp", plain}, want: plain},
		{name: "world-writable TMPDIR, not sticky", bases: []string{open, sticky}, want: sticky},
		{name: "group-writable TMPDIR, not sticky", bases: []string{group, plain}, want: plain},
		{name: "missing TMPDIR", bases: []string{filepath.Join(root, "missing"), plain}, want: plain},
		{name: "the real fallbacks", bases: []string{spaced, "/tmp", "/var/tmp"}, want: "/tmp"},
		{name: "nothing will do", bases: []string{spaced, file, open},
			wantErr: []string{`"` + spaced + `" has characters NIX_SSHOPTS cannot carry`, file + `" is not a directory`, open + `" is writable by group or others without the sticky bit`, "set TMPDIR to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := privateSSHDir(tt.bases)
			if tt.want == "" {
				if err == nil {
					os.RemoveAll(dir)
					t.Fatalf("made %s", dir)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			if filepath.Dir(dir) != tt.want {
				t.Errorf("made %s, want a directory in %s", dir, tt.want)
			}
			if !sshOptSafe(dir) || strings.ContainsAny(dir, " \t\n%'\"$\\") {
				t.Errorf("%s has characters NIX_SSHOPTS would mangle", dir)
			}
			fi, err := os.Lstat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s has mode %v; want a directory of mode 0700", dir, fi.Mode())
			}
		})
	}
}
