package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// errorDeployment is a deployment whose member ok has contents okContents,
// followed by the bad members. The bad members start on line 3.
func errorDeployment(okContents, bad string) string {
	return "{ members, providers, ... }: {\n" +
		`  members.ok = { type = providers.local.file; inputs = { name = "out/ok"; contents = "` + okContents + `"; }; };` + "\n" +
		bad + "\n}\n"
}

// TestDeploymentErrors: a deployment with an error fails plan and apply
// with a message naming the member (and the input, or the file and line),
// and neither creates nor changes any file or the state, whether nothing
// was applied before or a good deployment was.
func TestDeploymentErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// bad is inserted from line 3 of the deployment.
		bad string
		// want are substrings stderr must hold.
		want []string
	}{
		{
			name: "cycle",
			bad: `  members.cycA = { type = providers.local.file; inputs = { name = "out/cycA"; contents = members.cycB.outputs.sha256; }; };
  members.cycB = { type = providers.local.file; inputs = { name = "out/cycB"; contents = members.cycA.outputs.sha256; }; };`,
			want: []string{"cycle", "cycA", "cycB"},
		},
		{
			name: "cycle-through-computation",
			bad: `  members.cycA = { type = providers.local.exec; inputs = { executable = "echo"; args = [ (builtins.hashString "sha256" members.cycB.outputs.stdout) ]; }; };
  members.cycB = { type = providers.local.exec; inputs = { executable = "echo"; args = [ (builtins.substring 0 4 members.cycA.outputs.stdout) ]; }; };`,
			want: []string{"cycle", "cycA", "cycB"},
		},
		{
			name: "self-reference",
			bad:  `  members.selfRef = { type = providers.local.file; inputs = { name = "out/selfRef"; contents = "me: ${members.selfRef.outputs.sha256}"; }; };`,
			want: []string{"cycle", "selfRef"},
		},
		{
			name: "unknown-type",
			bad:  `  members.badType = { type = providers.local.nope; inputs = { name = "out/badType"; contents = "x"; }; };`,
			want: []string{"badType", "nope", "landscaper.nix:3"},
		},
		{
			name: "unknown-type-string",
			bad:  `  members.badType = { type = "local.nope"; inputs = { name = "out/badType"; contents = "x"; }; };`,
			want: []string{"badType", `"nope"`},
		},
		{
			name: "unknown-provider-string",
			bad:  `  members.badType = { type = "nosuch.file"; inputs = { name = "out/badType"; contents = "x"; }; };`,
			want: []string{"badType", `"nosuch"`},
		},
		{
			name: "type-not-a-type",
			bad:  `  members.badType = { type = 42; inputs = { name = "out/badType"; contents = "x"; }; };`,
			want: []string{"badType", "`type` must be"},
		},
		{
			name: "unknown-input",
			bad:  `  members.grp.members.badInput = { type = providers.local.file; inputs = { name = "out/badInput"; contents = "x"; colour = "red"; }; };`,
			want: []string{"grp.badInput", "inputs.colour"},
		},
		{
			name: "missing-required-input",
			bad:  `  members.missing = { type = providers.local.file; inputs = { name = "out/missing"; }; };`,
			want: []string{"missing", "inputs.contents", "required"},
		},
		{
			name: "wrong-input-type",
			bad:  `  members.wrongType = { type = providers.local.file; inputs = { name = "out/wrongType"; contents = 42; }; };`,
			want: []string{"wrongType", "inputs.contents", "string"},
		},
		{
			name: "invalid-input-value",
			bad:  `  members.badMode = { type = providers.local.file; inputs = { name = "out/badMode"; contents = "x"; mode = "rwx"; }; };`,
			want: []string{"badMode", "inputs.mode"},
		},
		{
			name: "reference-to-missing-member",
			bad:  `  members.dangling = { type = providers.local.file; inputs = { name = "out/dangling"; contents = members.ghost.outputs.sha256; }; };`,
			want: []string{"dangling", "ghost", "landscaper.nix:3"},
		},
		{
			name: "reference-to-missing-output",
			bad:  `  members.dangling = { type = providers.local.file; inputs = { name = "out/dangling"; contents = members.ok.outputs.md5; }; };`,
			want: []string{"dangling", "md5", "landscaper.nix:3"},
		},
		{
			name: "unknown-member-attribute",
			bad:  `  members.typo = { type = providers.local.file; input = { name = "out/typo"; contents = "x"; }; };`,
			want: []string{"typo", "`input`"},
		},
		{
			name: "throw-in-inputs",
			bad:  `  members.thrower = { type = providers.local.file; inputs = { name = "out/thrower"; contents = throw "no contents for you"; }; };`,
			want: []string{"thrower", "no contents for you"},
		},
		{
			name: "empty-member-name",
			bad:  `  members."" = { type = providers.local.file; inputs = { name = "out/empty"; contents = "x"; }; };`,
			want: []string{`member "" has an empty name`},
		},
		{
			name: "member-name-with-line-break",
			bad:  `  members."two\nlines" = { type = providers.local.file; inputs = { name = "out/nl"; contents = "x"; }; };`,
			want: []string{`member name "two\nlines" holds a line break`},
		},
		{
			name: "member-name-with-dot",
			bad:  `  members."a.b" = { type = providers.local.file; inputs = { name = "out/dot"; contents = "x"; }; };`,
			want: []string{`member name "a.b" holds '.'`},
		},
		{
			name: "member-name-with-hash",
			bad:  `  members."a#b" = { type = providers.local.file; inputs = { name = "out/hash"; contents = "x"; }; };`,
			want: []string{`member name "a#b" holds '#'`},
		},
		{
			name: "syntax-error",
			bad:  `  members.broken = { type = providers.local.file; inputs = { name = "out/broken" contents = "x"; }; };`,
			want: []string{"landscaper.nix:3", "syntax error"},
		},
	}

	// One applied deployment, copied for every case.
	applied := t.TempDir()
	writeFile(t, applied, "landscaper.nix", errorDeployment("v1", ""))
	mustRun(t, applied, 0, "apply", "--auto-approve")
	wantFile(t, applied, "out/ok", "v1")
	goodState := stateBytes(t, applied)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// The bad deployment also changes ok: if anything were
			// applied, out/ok would say v2.
			deployment := errorDeployment("v2", c.bad)
			check := func(t *testing.T, dir string, wantState []byte, wantOK string, runs [][]string) {
				t.Helper()
				for _, args := range runs {
					// plan --detailed-exitcode exits 1 for an error, 2 for
					// changes.
					stdout, stderr, code := run(t, dir, args...)
					if code != 1 {
						t.Errorf("landscaper %s: exit %d, want an error\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
						continue
					}
					for _, w := range c.want {
						if !strings.Contains(stderr, w) {
							t.Errorf("landscaper %s: stderr does not mention %q:\n%s", strings.Join(args, " "), w, stderr)
						}
					}
				}
				if got := stateBytes(t, dir); !bytes.Equal(got, wantState) {
					t.Errorf("the state changed:\nbefore: %s\nafter:  %s", wantState, got)
				}
				files := snapshot(t, dir, "out")
				if wantOK == "" {
					if len(files) != 0 {
						t.Errorf("files were created: %v", keys(files))
					}
				} else {
					if len(files) != 1 || files["out/ok"].contents != wantOK {
						t.Errorf("files after the failed runs: %v, want only out/ok holding %q", keys(files), wantOK)
					}
				}
			}
			t.Run("fresh", func(t *testing.T) {
				dir := t.TempDir()
				writeFile(t, dir, "landscaper.nix", deployment)
				check(t, dir, nil, "", [][]string{{"plan", "--detailed-exitcode"}, {"apply", "--auto-approve"}})
			})
			t.Run("applied", func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, applied, dir)
				writeFile(t, dir, "landscaper.nix", deployment)
				check(t, dir, goodState, "v1", [][]string{{"apply", "--auto-approve"}})
			})
		})
	}
}

func keys(m map[string]fileSnap) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v.contents)
	}
	return out
}

// copyDir copies the regular files and directories under src to dst,
// keeping modes.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
