package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// flakeSource finds a --flake deployment: a relative reference (".",
// "./deploy") is made absolute, since builtins.getFlake takes no other,
// and the deployment's directory is the flake's (the current one for a
// flake that is not on this machine).
func (c *common) flakeSource() (eval.Source, string, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return eval.Source{}, "", fmt.Errorf("--flake %s: the current directory: %w", c.flake, err)
	}
	fr, err := eval.ResolveFlakeRef(c.flake, cwd)
	if err != nil {
		return eval.Source{}, "", err
	}
	dir := fr.Dir
	if dir == "" {
		dir = "."
	}
	return eval.Source{Flake: fr.Ref, FlakeAttr: fr.Attr, ShowTrace: c.showTrace}, dir, nil
}

// checkFlakeCopy refuses a flake that nix copies whole into the Nix store,
// which every user can read (a path: flake: one in no git repository),
// when the state file, which holds secrets, is inside it.
func checkFlakeCopy(ref string, src eval.Source, backend state.Backend) error {
	root, ok := strings.CutPrefix(src.Flake, "path:")
	if !ok {
		return nil
	}
	root, _, _ = strings.Cut(root, "?")
	f, ok := backend.(*state.File)
	if !ok {
		return nil
	}
	place, err := filepath.Abs(f.Describe())
	if err != nil {
		return fmt.Errorf("the state file %s: %w", f.Describe(), err)
	}
	rel, err := filepath.Rel(root, place)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil
	}
	return fmt.Errorf("--flake %s: the flake is in no git repository, so nix copies all of %s into the Nix store, which every user can read, "+
		"and the state %s, which holds secrets such as private keys, is inside it; "+
		"make %s a git repository (nix then copies only the files git tracks: keep .landscaper out of it, in .gitignore), or keep the state elsewhere with --state",
		ref, root, place, root)
}

// absDir is the deployment's directory as an absolute path: the providers
// run there, so relative paths in inputs mean the same from anywhere.
func absDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("the deployment's directory %s: %w", dir, err)
	}
	return abs, nil
}
