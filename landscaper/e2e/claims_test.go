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

// Two deployments (both naming their member "netboot") that write an entry
// for one machine into one boot directory: the second is refused when
// planning and applying, naming the owner; the first's entry stays; the
// second's destroy leaves it alone.
func TestTwoDeploymentsCannotShareAMachine(t *testing.T) {
	t.Parallel()
	bootDir := t.TempDir()
	deployment := func(mac, cmdline string) string {
		return `{ members, providers, ... }: {
  members.netboot = { type = providers.pxe-nbp.entry; inputs = { mac = "` + mac + `"; kernel = builtins.toFile "kernel" "k"; initrd = [ (builtins.toFile "initrd" "i") ]; cmdline = "` + cmdline + `"; bootDir = "` + bootDir + `"; }; };
}
`
	}
	first, second := t.TempDir(), t.TempDir()
	writeFile(t, first, "landscaper.nix", deployment("52:54:00:aa:bb:cc", "first"))
	writeFile(t, second, "landscaper.nix", deployment("52-54-00-AA-BB-CC", "second"))
	mustRun(t, first, 0, "apply", "--auto-approve")
	link := filepath.Join(bootDir, "entries", "52-54-00-aa-bb-cc")
	before, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}} {
		_, stderr := mustRun(t, second, 1, args...)
		if !strings.Contains(stderr, `belongs to member "netboot" of another deployment`) {
			t.Errorf("landscaper %s in the second deployment: stderr does not name the owner:\n%s", strings.Join(args, " "), stderr)
		}
	}
	if after, _ := os.Readlink(link); after != before {
		t.Errorf("the first deployment's entry changed: %s -> %s", before, after)
	}
	mustRun(t, second, 0, "destroy", "--auto-approve")
	if after, _ := os.Readlink(link); after != before {
		t.Errorf("the second deployment's destroy changed the first's entry: %s -> %s", before, after)
	}
	// The first deployment goes on as before: a plan is clean.
	mustRun(t, first, 0, "plan", "--detailed-exitcode")
	mustRun(t, first, 0, "destroy", "--auto-approve")
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("the entry is still there after the first deployment's destroy: %v", err)
	}
}
