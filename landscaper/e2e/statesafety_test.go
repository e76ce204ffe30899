package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const oneFileDeployment = `{ members, providers, ... }: {
  members.f = { type = providers.local.file; inputs = { name = "out/f"; contents = "eff\n"; }; };
}
`

// TestStatePushRefusesUnsafePlaces: `state push DIR/state.json` into a
// directory others can write to, or through a lock planted as a link, is
// refused before anything is written there and never writes through a
// planted link; into a private directory it works, even over a link
// planted at the temporary name of earlier versions.
func TestStatePushRefusesUnsafePlaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", oneFileDeployment)
	mustRun(t, dir, 0, "apply", "--auto-approve")

	tests := []struct {
		name string
		mode fs.FileMode
		// links are names in the destination directory planted as links
		// to another user's file.
		links []string
		// wantErr: the push fails saying these; none: it succeeds.
		wantErr []string
	}{
		{name: "world-writable directory with planted links", mode: 0o777, links: []string{".state.json.tmp", "state.json.lock"},
			wantErr: []string{"mode 0777", "writable by its group or others", "chmod go-w"}},
		{name: "sticky world-writable directory", mode: 0o777 | fs.ModeSticky,
			wantErr: []string{"mode 1777", "writable by its group or others"}},
		{name: "private directory with a planted lock link", mode: 0o700, links: []string{"state.json.lock"},
			wantErr: []string{"state.json.lock", "is a symbolic link"}},
		{name: "private directory with a planted temporary-file link", mode: 0o700, links: []string{".state.json.tmp"}},
		{name: "private directory", mode: 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(shared, 0o700); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("another user's\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, name := range tt.links {
				if err := os.Symlink(victim, filepath.Join(shared, name)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(shared, tt.mode); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(shared, "state.json")
			stdout, stderr, code := run(t, dir, "state", "push", dest)
			if b, err := os.ReadFile(victim); err != nil || string(b) != "another user's\n" {
				t.Errorf("the planted links' target holds %q (%v)", b, err)
			}
			if fi, err := os.Stat(victim); err != nil {
				t.Error(err)
			} else if fi.Mode().Perm() != 0o644 {
				t.Errorf("the planted links' target changed mode to %v", fi.Mode().Perm())
			}
			if tt.wantErr == nil {
				if code != 0 {
					t.Fatalf("state push: exit %d\n%s", code, stderr)
				}
				if fi, err := os.Lstat(dest); err != nil {
					t.Error(err)
				} else if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
					t.Errorf("pushed state is %v; want a regular file of mode 0600", fi.Mode())
				}
				if b, _ := os.ReadFile(dest); !strings.Contains(string(b), `"f":`) {
					t.Errorf("pushed state lacks member f:\n%s", b)
				}
				return
			}
			if code == 0 {
				t.Fatalf("state push succeeded:\n%s", stdout)
			}
			for _, want := range append(tt.wantErr, shared) {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if exists(shared, "state.json") {
				t.Errorf("a state was written into %s", shared)
			}
		})
	}
}

// TestApplyRefusesUnsafeStateDir: an existing .landscaper directory that
// others can write to is refused, saying how to fix it, and the run
// changes nothing; once made private, the apply works. A deployment
// directory others can write to gets a private .landscaper.
func TestApplyRefusesUnsafeStateDir(t *testing.T) {
	t.Parallel()
	t.Run("existing .landscaper writable by others", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "landscaper.nix", oneFileDeployment)
		stateDir := filepath.Join(dir, ".landscaper")
		if err := os.Mkdir(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(stateDir, 0o777); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := run(t, dir, "apply", "--auto-approve")
		if code == 0 {
			t.Fatal("apply with a world-writable .landscaper succeeded")
		}
		for _, want := range []string{"state directory .landscaper (mode 0777", "chmod go-w .landscaper"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr)
			}
		}
		wantNoFile(t, dir, "out/f")
		if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
			t.Errorf(".landscaper holds %d entries after the refused apply", len(entries))
		}
		if err := os.Chmod(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		mustRun(t, dir, 0, "apply", "--auto-approve")
		wantFile(t, dir, "out/f", "eff\n")
	})
	t.Run("deployment directory writable by others", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "landscaper.nix", oneFileDeployment)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		mustRun(t, dir, 0, "apply", "--auto-approve")
		checkStatePerms(t, dir)
	})
}
