package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveFlakeRef(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string) string {
		t.Helper()
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "flake.nix"), []byte("{ outputs = _: { }; }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	plain := mk("plain")
	mk("plain/sub")
	repo := filepath.Join(root, "repo")
	mk("repo/deploy")
	if err := os.MkdirAll(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	mk("repo")
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, ref, cwd string
		want           FlakeRef
		err            string
	}{
		{"dot", ".", plain, FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"relative", "./plain", root, FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"parent", "../plain", filepath.Join(root, "empty"), FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"absolute", plain, "/", FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"existing directory by name", "plain", root, FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"dir query", ".?dir=sub", plain, FlakeRef{Ref: "path:" + plain + "?dir=sub", Dir: filepath.Join(plain, "sub"), Copied: plain}, ""},
		{"relative path URL", "path:plain", root, FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"absolute path URL", "path:" + plain, "/", FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain}, ""},
		{"git root", ".", repo, FlakeRef{Ref: "git+file://" + repo, Dir: repo}, ""},
		{"in a git repository", "./deploy", repo, FlakeRef{Ref: "git+file://" + repo + "?dir=deploy", Dir: filepath.Join(repo, "deploy")}, ""},
		{"git URL", "git+file:" + repo, "/", FlakeRef{Ref: "git+file://" + repo, Dir: repo}, ""},
		{"registry name", "nixpkgs", root, FlakeRef{Ref: "nixpkgs"}, ""},
		{"remote", "github:owner/repo", root, FlakeRef{Ref: "github:owner/repo"}, ""},
		{"no flake.nix", "./empty", root, FlakeRef{}, "holds no flake.nix"},
		{"missing", "./nowhere", root, FlakeRef{}, "holds no flake.nix"},
		{"a deployment of landscaperDeployments", ".#prod", plain, FlakeRef{Ref: "path:" + plain, Dir: plain, Copied: plain, Attr: "prod"}, ""},
		{"its full attribute path", ".?dir=sub#landscaperDeployments.prod", plain, FlakeRef{Ref: "path:" + plain + "?dir=sub", Dir: filepath.Join(plain, "sub"), Copied: plain, Attr: "prod"}, ""},
		{"a remote flake's deployment", "github:owner/repo#staging", root, FlakeRef{Ref: "github:owner/repo", Attr: "staging"}, ""},
		{"an empty name", ".#", plain, FlakeRef{}, "after # give the name of one of the flake's landscaperDeployments"},
		{"a nested name", ".#a.b", plain, FlakeRef{}, "after # give the name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveFlakeRef(tc.ref, tc.cwd)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ResolveFlakeRef(%q) = %+v, %v; want an error saying %q", tc.ref, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ResolveFlakeRef(%q) = %+v, %v; want %+v", tc.ref, got, err, tc.want)
			}
		})
	}
}

func TestSourceDir(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		src  Source
		want string
	}{
		{Source{File: "/srv/deploy/landscaper.nix"}, "/srv/deploy"},
		{Source{File: "deploy/landscaper.nix"}, filepath.Join(cwd, "deploy")},
		{Source{Flake: "path:/srv/deploy"}, "/srv/deploy"},
		{Source{Flake: "path:/srv/deploy?dir=prod"}, "/srv/deploy/prod"},
		{Source{Flake: "git+file:///srv/repo?dir=deploy"}, "/srv/repo/deploy"},
		{Source{Flake: "github:owner/repo"}, ""},
		{Source{}, ""},
	}
	for _, tc := range cases {
		if got := tc.src.Dir(); got != tc.want {
			t.Errorf("%+v.Dir() = %q, want %q", tc.src, got, tc.want)
		}
	}
}
