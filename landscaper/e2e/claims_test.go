package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two members that would own the same thing (a machine's boot entry, under
// two notations of its MAC; one file, under two spellings of its path) are
// refused when planning, naming both, and nothing is written.
func TestTwoMembersCannotClaimOneThing(t *testing.T) {
	t.Parallel()
	bootDir := t.TempDir()
	cases := []struct {
		name    string
		members string
		want    []string
		written string
	}{
		{
			name: "one MAC, two entries",
			members: `  members.web1 = { type = providers.pxe-nbp.entry; inputs = { mac = "52:54:00:12:34:56"; kernel = kernel; initrd = [ initrd ]; bootDir = "` + bootDir + `"; }; };
  members.web1again = { type = providers.pxe-nbp.entry; inputs = { mac = "52-54-00-12-34-56"; kernel = kernel; initrd = [ initrd ]; bootDir = "` + bootDir + `/"; }; };`,
			want:    []string{"members web1 and web1again both claim the boot entry of MAC 52:54:00:12:34:56 in " + bootDir},
			written: bootDir,
		},
		{
			name: "one file, two members",
			members: `  members.a = { type = providers.local.file; inputs = { name = "out/f"; contents = "a"; }; };
  members.b = { type = providers.local.file; inputs = { name = "./out/../out/f"; contents = "b"; }; };`,
			want:    []string{"members a and b both claim the file ", "/out/f"},
			written: "out",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: let
  kernel = builtins.toFile "kernel" "not really a kernel";
  initrd = builtins.toFile "initrd" "not really an initrd";
in {
`+c.members+`
}
`)
			for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}} {
				stdout, stderr, code := run(t, dir, args...)
				if code != 1 {
					t.Fatalf("landscaper %s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("landscaper %s: stderr does not say %q:\n%s", strings.Join(args, " "), w, stderr)
					}
				}
			}
			written := c.written
			if !filepath.IsAbs(written) {
				written = filepath.Join(dir, written)
			}
			if entries, err := os.ReadDir(written); err == nil && len(entries) > 0 {
				t.Errorf("%s holds %d entries after the refused runs", written, len(entries))
			}
			if exists(dir, ".landscaper/state.json") {
				if m := stateMembers(t, dir); len(m) > 0 {
					t.Errorf("the state records %v", m)
				}
			}
		})
	}
}
