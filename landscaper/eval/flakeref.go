package eval

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// FlakeRef is a --flake reference resolved for builtins.getFlake, which
// takes absolute references only.
type FlakeRef struct {
	// Ref is the reference to evaluate.
	Ref string
	// Dir is the flake's directory on this machine (absolute); empty for a
	// flake that is not local (github:..., a registry name).
	Dir string
	// Copied is the directory nix copies whole into the Nix store to
	// evaluate the flake, untracked files and all (a path: flake); empty
	// for a flake in a git repository (nix copies the files git tracks).
	Copied string
	// Attr names the deployment among the flake's
	// outputs.landscaperDeployments (REF#NAME); empty for
	// outputs.landscaper.
	Attr string
}

// attrRe matches a deployment's name in REF#NAME.
var attrRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

// schemeRe matches the scheme of a flake URL ("github", "git+file").
var schemeRe = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// ResolveFlakeRef resolves a flake reference as nix's command line reads
// it, relative to cwd: a path (".", "./deploy", "../x", "/srv/deploy", or
// the name of a directory that exists) becomes git+file://ROOT?dir=SUB if it
// is in a git repository, as nix's command line does, and path:/ABSOLUTE
// otherwise; path: and git+file: URLs with a relative path become absolute.
// Other references (github:..., a registry name) are left to nix. A
// fragment, REF#NAME (or REF#landscaperDeployments.NAME), names one of the
// flake's outputs.landscaperDeployments.
func ResolveFlakeRef(ref, cwd string) (FlakeRef, error) {
	ref, attr, hasAttr := strings.Cut(ref, "#")
	if hasAttr {
		attr = strings.TrimPrefix(attr, "landscaperDeployments.")
		if !attrRe.MatchString(attr) {
			return FlakeRef{}, fmt.Errorf("--flake %s#%s: after # give the name of one of the flake's landscaperDeployments (without #, the deployment is its outputs.landscaper)", ref, attr)
		}
	}
	fr, err := resolveFlakeRef(ref, cwd)
	if err != nil {
		return fr, err
	}
	fr.Attr = attr
	return fr, nil
}

func resolveFlakeRef(ref, cwd string) (FlakeRef, error) {
	scheme, rest, hasScheme := strings.Cut(ref, ":")
	if !hasScheme || !schemeRe.MatchString(scheme) {
		pathPart, _, _ := strings.Cut(ref, "?")
		if !strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, ".") && !isDir(join(cwd, pathPart)) {
			// A registry name, such as "nixpkgs".
			return FlakeRef{Ref: ref}, nil
		}
		return resolvePath(ref, ref, cwd, true)
	}
	switch scheme {
	case "path":
		return resolvePath(ref, rest, cwd, false)
	case "git+file":
		fr, err := resolvePath(ref, strings.TrimPrefix(rest, "//"), cwd, false)
		if err != nil {
			return fr, err
		}
		fr.Ref = "git+file://" + strings.TrimPrefix(fr.Ref, "path:")
		fr.Copied = ""
		return fr, nil
	}
	return FlakeRef{Ref: ref}, nil
}

// resolvePath resolves the path (with an optional ?query) of a path-like
// reference. findGit looks for the git repository it is in, as nix's
// command line does for a path given without a scheme.
func resolvePath(ref, p, cwd string, findGit bool) (FlakeRef, error) {
	p, rawQuery, _ := strings.Cut(p, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return FlakeRef{}, fmt.Errorf("--flake %s: %w", ref, err)
	}
	abs := join(cwd, p)
	dir := filepath.Join(abs, query.Get("dir"))
	if _, err := os.Stat(filepath.Join(dir, "flake.nix")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FlakeRef{}, fmt.Errorf("--flake %s: %s holds no flake.nix", ref, dir)
		}
		return FlakeRef{}, fmt.Errorf("--flake %s: %w", ref, err)
	}
	if findGit {
		if root, ok := gitRoot(abs); ok {
			sub, err := filepath.Rel(root, dir)
			if err != nil {
				return FlakeRef{}, fmt.Errorf("--flake %s: %w", ref, err)
			}
			query.Del("dir")
			if sub != "." {
				query.Set("dir", sub)
			}
			return FlakeRef{Ref: "git+file://" + root + encode(query), Dir: dir}, nil
		}
	}
	return FlakeRef{Ref: "path:" + abs + encode(query), Dir: dir, Copied: abs}, nil
}

// gitRoot finds the git work tree dir is in.
func gitRoot(dir string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d, true
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

func join(cwd, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func encode(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Dir is the deployment's directory on this machine, absolute: the
// directory of the file, or of a local flake (path: or git+file:, with its
// ?dir=); "" for a remote flake or no deployment.
func (s Source) Dir() string {
	if s.File != "" {
		abs, err := filepath.Abs(s.File)
		if err != nil {
			return ""
		}
		return filepath.Dir(abs)
	}
	rest, ok := strings.CutPrefix(s.Flake, "path:")
	if !ok {
		if rest, ok = strings.CutPrefix(s.Flake, "git+file://"); !ok {
			return ""
		}
	}
	p, rawQuery, _ := strings.Cut(rest, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil || !filepath.IsAbs(p) {
		return ""
	}
	return filepath.Join(p, query.Get("dir"))
}
