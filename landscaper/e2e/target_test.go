package e2e

import (
	"strings"
	"testing"
)

const targetDeployment = `{ members, providers, ... }: {
  members.base = { type = providers.local.file; inputs = { name = "out/base"; contents = "base\n"; }; };
  members.mid = { type = providers.local.file; inputs = { name = "out/mid"; contents = "mid ${members.base.outputs.sha256}\n"; }; };
  members.top = { type = providers.local.file; inputs = { name = "out/top"; contents = "top ${members.mid.outputs.sha256}\n"; }; };
  members.other = { type = providers.local.file; inputs = { name = "out/other"; contents = "other\n"; }; };
  members.cmd = { type = providers.local.exec; inputs = { executable = "echo"; args = [ "from cmd" ]; }; };
  members.hashed = { type = providers.local.file; inputs = { name = "out/hashed"; contents = builtins.hashString "sha256" members.cmd.outputs.stdout; }; };
  members.g.members.n = { type = providers.local.file; inputs = { name = "out/gn"; contents = "gn\n"; }; };
}
`

// TestTarget: --target applies (or destroys) only the member and what it
// needs (or what needs it).
func TestTarget(t *testing.T) {
	t.Parallel()
	all := []string{"base", "cmd", "g.n", "hashed", "mid", "other", "top"}
	cases := []struct {
		name    string
		targets []string
		// want are the members applied.
		want []string
	}{
		{"leaf", []string{"base"}, []string{"base"}},
		{"passes-an-output-on", []string{"mid"}, []string{"base", "mid"}},
		{"transitive", []string{"top"}, []string{"base", "mid", "top"}},
		{"nested", []string{"g.n"}, []string{"g.n"}},
		{"two", []string{"mid", "other"}, []string{"base", "mid", "other"}},
		// hashed computes with cmd's stdout (a hash of it): it needs cmd.
		{"computes-with-an-output", []string{"hashed"}, []string{"cmd", "hashed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "landscaper.nix", targetDeployment)
			args := []string{"apply", "--auto-approve", "--json"}
			for _, tg := range c.targets {
				args = append(args, "--target", tg)
			}
			out, stderr, code := run(t, dir, args...)
			if code != 0 {
				t.Errorf("apply %v: exit %d\n%s\n%s", c.targets, code, out, stderr)
			}
			evs := events(t, out)
			if got := membersWith(evs, "done"); !sameStrings(got, c.want) {
				t.Errorf("apply --target %v finished %v, want %v", c.targets, got, c.want)
			}
			if got := stateMembers(t, dir); !sameStrings(got, c.want) {
				t.Errorf("state after apply --target %v = %v, want %v", c.targets, got, c.want)
			}
			if got := snapshot(t, dir, "out"); len(got) != len(c.want)-countExec(c.want) {
				t.Errorf("files after apply --target %v: %v", c.targets, keys(got))
			}
			// The targeted apply is complete: a targeted plan is clean,
			// a full plan creates the rest.
			planArgs := append([]string{"plan", "--detailed-exitcode"}, args[3:]...)
			mustRun(t, dir, 0, planArgs...)
			out, _ = mustRun(t, dir, 0, "plan", "--json")
			for member, action := range actions(planOf(t, events(t, out))) {
				wantAction := "create"
				for _, w := range c.want {
					if w == member {
						wantAction = "no-op"
					}
				}
				if action != wantAction {
					t.Errorf("full plan after apply --target %v: %s %s, want %s", c.targets, member, action, wantAction)
				}
			}
			if len(actions(planOf(t, events(t, out)))) != len(all) {
				t.Errorf("full plan does not cover all of %v", all)
			}
		})
	}

	t.Run("no-such-member", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "landscaper.nix", targetDeployment)
		for _, args := range [][]string{
			{"plan", "--target", "nope"},
			{"apply", "--auto-approve", "--target", "nope"},
			{"apply", "--auto-approve", "--target", "base", "--target", "nope"},
		} {
			_, stderr, code := run(t, dir, args...)
			if code == 0 || !strings.Contains(stderr, "nope") {
				t.Errorf("%v: exit %d, stderr %q; want an error naming nope", args, code, stderr)
			}
		}
		if stateBytes(t, dir) != nil || exists(dir, "out") {
			t.Errorf("--target nope created state or files")
		}
	})

	t.Run("destroy", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "landscaper.nix", targetDeployment)
		mustRun(t, dir, 0, "apply", "--auto-approve")
		out, _ := mustRun(t, dir, 0, "destroy", "--auto-approve", "--json", "--target", "mid")
		evs := events(t, out)
		if got := membersWith(evs, "done"); !sameStrings(got, []string{"mid", "top"}) {
			t.Errorf("destroy --target mid finished %v, want mid and top (which needs it)", got)
		}
		requireOrder(t, evs, "done", "top", "started", "mid")
		wantNoFile(t, dir, "out/mid")
		wantNoFile(t, dir, "out/top")
		wantFile(t, dir, "out/base", "base\n")
		wantFile(t, dir, "out/other", "other\n")
		if got := stateMembers(t, dir); !sameStrings(got, []string{"base", "cmd", "g.n", "hashed", "other"}) {
			t.Errorf("state after destroy --target mid = %v", got)
		}
	})
}

func countExec(members []string) int {
	n := 0
	for _, m := range members {
		if m == "cmd" {
			n++
		}
	}
	return n
}
