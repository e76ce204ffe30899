package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// defaultFileMode is the mode of a file whose mode input is not given.
const defaultFileMode = "0644"

// fileInputs are the inputs of local.file.
type fileInputs struct {
	Name     string `json:"name"`
	Contents string `json:"contents"`
	Mode     string `json:"mode"`
}

// fileOutputs are the outputs of local.file.
type fileOutputs struct {
	SHA256 string `json:"sha256"`
}

// writing tracks the files this provider process is writing, so that Read
// can remove a temporary file a killed process left behind without
// touching one in use.
type writing struct {
	mu    sync.Mutex
	names map[string]int
}

func (w *writing) start(name string) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.names[name]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.names[name]--; w.names[name] == 0 {
			delete(w.names, name)
		}
	}
}

// removeLeftover removes the temporary file of name unless it is being
// written now.
func (w *writing) removeLeftover(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.names[name] == 0 {
		_ = os.Remove(tempName(name))
	}
}

func fileType() *sdk.Type[fileInputs, fileOutputs] {
	inFlight := &writing{names: map[string]int{}}
	return &sdk.Type[fileInputs, fileOutputs]{
		Description: "A file on the machine running the engine, written atomically with the given contents and mode.",
		Inputs: []sdk.Attr{
			sdk.String("name", "Path of the file; a relative path is relative to the engine's working directory. A change replaces the file.").Required().ForceNew(),
			sdk.String("contents", "Contents of the file.").Required(),
			sdk.String("mode", "Permission bits in octal, like \"0600\" or \"644\".").Default(defaultFileMode),
		},
		Outputs: []sdk.Attr{
			sdk.String("sha256", "SHA-256 of the file's contents, lowercase hex."),
		},
		Validate: validateFile,
		Plan:     planFile,
		Create: func(ctx context.Context, op *sdk.Op, in fileInputs) (fileOutputs, error) {
			defer inFlight.start(in.Name)()
			return writeFile(ctx, op, in)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[fileInputs, fileOutputs], in fileInputs) (fileOutputs, error) {
			defer inFlight.start(in.Name)()
			return writeFile(ctx, op, in)
		},
		Delete: deleteFile,
		Read: func(ctx context.Context, prior sdk.State[fileInputs, fileOutputs]) (fileOutputs, bool, error) {
			if prior.Inputs.Name != "" {
				inFlight.removeLeftover(prior.Inputs.Name)
			}
			return readFile(ctx, prior)
		},
	}
}

func validateFile(in fileInputs, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	if p := resource.AttrPath("name"); !resource.Covered(p, unknown) && in.Name == "" {
		diags = append(diags, resource.Error(p, "empty file name", "name must be a path"))
	}
	if p := resource.AttrPath("mode"); !resource.Covered(p, unknown) {
		if _, err := sdk.ParseFileMode(in.Mode); err != nil {
			diags = append(diags, resource.Error(p, "invalid file mode", "%v", err))
		}
	}
	return diags
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// planFile claims the file, fills in the planned hash when the contents
// are known, and
// turns a no-op into an update when the file on disk no longer has the
// desired contents (Read refreshed the recorded hash).
func planFile(_ context.Context, p *sdk.Plan[fileInputs, fileOutputs]) {
	if !p.IsUnknown("name") && p.Desired.Name != "" {
		// Two members writing one file would overwrite each other.
		if abs, err := filepath.Abs(p.Desired.Name); err == nil {
			p.Claims = append(p.Claims, "file "+abs)
		}
	}
	if p.IsUnknown("contents") {
		return
	}
	want := hashString(p.Desired.Contents)
	if p.Prior != nil && p.Prior.HasOutputs && p.Prior.Outputs.SHA256 != want {
		contents := resource.AttrPath("contents")
		switch p.Action {
		case resource.ActionNoop:
			p.Action = resource.ActionUpdate
			p.Changed = append(p.Changed, contents)
		case resource.ActionUpdate:
			if !slices.ContainsFunc(p.Changed, func(c resource.Path) bool { return c.String() == contents.String() }) {
				p.Changed = append(p.Changed, contents)
			}
		}
	}
	if p.Planned == nil {
		p.Planned = map[string]any{}
	}
	p.Planned["sha256"] = want
	p.UnknownOutputs = slices.DeleteFunc(p.UnknownOutputs, func(name string) bool { return name == "sha256" })
}

// writeFile writes the file atomically: a temporary file in the same
// directory, given its mode, is renamed over the target. It is not
// fsynced: refresh notices a file lost to a power cut and writes it again,
// and a chain of files is not held up by a disk flush for each.
func writeFile(ctx context.Context, op *sdk.Op, in fileInputs) (fileOutputs, error) {
	mode, err := sdk.ParseFileMode(in.Mode)
	if err != nil {
		return fileOutputs{}, fmt.Errorf("file %s: %w", in.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return fileOutputs{}, fmt.Errorf("write file %s: %w", in.Name, err)
	}
	if err := writeAtomic(in.Name, []byte(in.Contents), mode); err != nil {
		return fileOutputs{}, err
	}
	op.Logf("wrote %s (%d bytes, mode %s)", in.Name, len(in.Contents), in.Mode)
	return fileOutputs{SHA256: hashString(in.Contents)}, nil
}

// tempName is where a file's new contents are written before the rename.
func tempName(name string) string {
	return filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".landscaper-tmp")
}

func writeAtomic(name string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory of file %s: %w", name, err)
	}
	// One fixed temporary name per file: a write cut short by a kill
	// leaves one file that the next write (or the delete) replaces.
	tmp, err := os.OpenFile(tempName(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write temporary file %s: %w", tmp.Name(), err)
	}
	// Chmod after creation so the umask does not interfere.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod temporary file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temporary file %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("rename temporary file to %s: %w", name, err)
	}
	return nil
}

func deleteFile(ctx context.Context, op *sdk.Op, prior sdk.State[fileInputs, fileOutputs]) error {
	name := prior.Inputs.Name
	if name == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete file %s: %w", name, err)
	}
	_ = os.Remove(tempName(name)) // left by a write that was killed
	err := os.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		op.Logf("%s is gone already", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete file %s: %w", name, err)
	}
	op.Logf("deleted %s", name)
	return nil
}

// readFile reports whether the file exists and the hash of what it holds
// now, so a change behind Landscaper's back shows in the next plan.
func readFile(ctx context.Context, prior sdk.State[fileInputs, fileOutputs]) (fileOutputs, bool, error) {
	name := prior.Inputs.Name
	if name == "" {
		return fileOutputs{}, false, nil
	}
	if err := ctx.Err(); err != nil {
		return fileOutputs{}, false, fmt.Errorf("read file %s: %w", name, err)
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fileOutputs{}, false, nil
	}
	if err != nil {
		return fileOutputs{}, false, fmt.Errorf("read file %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fileOutputs{}, false, fmt.Errorf("read file %s: %w", name, err)
	}
	return fileOutputs{SHA256: hex.EncodeToString(h.Sum(nil))}, true, nil
}
