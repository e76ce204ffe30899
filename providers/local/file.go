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
	"syscall"

	"github.com/landscaper-nix/landscaper/internal/eintr"
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
	// Path is the file's absolute path, recorded so that the state means
	// the same file whatever directory a later run starts in. Records
	// made before it existed have none (omitempty keeps their refresh
	// quiet); their name is relative to the provider's directory.
	Path string `json:"path,omitempty"`
}

// workDir is the provider's working directory, which the engine sets to
// the deployment's directory, read once when the provider starts (every
// plan and write of a file resolves its name against it); empty when it
// could not be read, and then asked each time.
type workDir string

func currentWorkDir() workDir {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return workDir(wd)
}

// absName is where a name puts the file: a relative name is relative to
// the working directory.
func (d workDir) absName(name string) (string, error) {
	if filepath.IsAbs(name) {
		return filepath.Clean(name), nil
	}
	if d != "" {
		return filepath.Join(string(d), name), nil
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", fmt.Errorf("file %s: %w", name, err)
	}
	return abs, nil
}

// recordedPath is the file a recorded resource is: its recorded absolute
// path, or, for a record without one, its name.
func recordedPath(prior sdk.State[fileInputs, fileOutputs]) string {
	if prior.Outputs.Path != "" {
		return prior.Outputs.Path
	}
	return prior.Inputs.Name
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
		// unlink alone: os.Remove tries rmdir too after a failure, and
		// there is nearly always nothing to remove (a refresh does this
		// for every file).
		_ = eintr.Retry(func() error { return syscall.Unlink(tempName(name)) })
	}
}

func fileType() *sdk.Type[fileInputs, fileOutputs] {
	inFlight := &writing{names: map[string]int{}}
	wd := currentWorkDir()
	return &sdk.Type[fileInputs, fileOutputs]{
		Description: "A file on the machine running the engine, written atomically with the given contents and mode.",
		Inputs: []sdk.Attr{
			sdk.String("name", "Path of the file; a relative path is relative to the deployment's directory. A change of the path it names replaces the file.").Required().ForceNew(),
			sdk.String("contents", "Contents of the file.").Required(),
			sdk.String("mode", "Permission bits in octal, like \"0600\" or \"644\".").Default(defaultFileMode),
		},
		Outputs: []sdk.Attr{
			sdk.String("sha256", "SHA-256 of the file's contents, lowercase hex."),
			sdk.String("path", "The file's absolute path: name, resolved against the deployment's directory."),
		},
		Validate: validateFile,
		Plan: func(ctx context.Context, p *sdk.Plan[fileInputs, fileOutputs]) {
			planFile(ctx, p, wd)
		},
		Create: func(ctx context.Context, op *sdk.Op, in fileInputs) (fileOutputs, error) {
			return writeFile(ctx, op, in, inFlight, wd)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[fileInputs, fileOutputs], in fileInputs) (fileOutputs, error) {
			return writeFile(ctx, op, in, inFlight, wd)
		},
		Delete: deleteFile,
		Read: func(ctx context.Context, prior sdk.State[fileInputs, fileOutputs]) (fileOutputs, bool, error) {
			if name := recordedPath(prior); name != "" {
				inFlight.removeLeftover(name)
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
func planFile(_ context.Context, p *sdk.Plan[fileInputs, fileOutputs], wd workDir) {
	if !p.IsUnknown("name") && p.Desired.Name != "" {
		abs, err := wd.absName(p.Desired.Name)
		if err != nil {
			p.Diagnostics = append(p.Diagnostics, resource.Error(resource.AttrPath("name"), "cannot resolve the file's path", "%v", err))
			return
		}
		// Two members writing one file would overwrite each other.
		p.Claims = append(p.Claims, "file "+abs)
		planPath(p, abs)
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
	p.SetKnown(fileOutputs{SHA256: want}, "sha256")
}

// planPath makes the planned path known, and replaces a file recorded at
// another path than name gives now (a relative name in a deployment that
// moved, say).
func planPath(p *sdk.Plan[fileInputs, fileOutputs], abs string) {
	p.SetKnown(fileOutputs{Path: abs}, "path")
	if p.Prior == nil || !p.Prior.HasOutputs || p.Prior.Outputs.Path == "" || p.Prior.Outputs.Path == abs {
		return
	}
	name := resource.AttrPath("name")
	switch p.Action {
	case resource.ActionNoop, resource.ActionUpdate:
		p.Action = resource.ActionReplace
	}
	if !slices.ContainsFunc(p.RequiresReplace, func(c resource.Path) bool { return c.String() == name.String() }) {
		p.RequiresReplace = append(p.RequiresReplace, name)
	}
	p.Diagnostics = append(p.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning, Attribute: name,
		Summary: fmt.Sprintf("name %q is %s now, but the file was written at %s: that one is deleted and this one written", p.Desired.Name, abs, p.Prior.Outputs.Path)})
}

// writeFile writes the file atomically: a temporary file in the same
// directory, given its mode, is renamed over the target. It is not
// fsynced: refresh notices a file lost to a power cut and writes it again,
// and a chain of files is not held up by a disk flush for each.
func writeFile(ctx context.Context, op *sdk.Op, in fileInputs, inFlight *writing, wd workDir) (fileOutputs, error) {
	mode, err := sdk.ParseFileMode(in.Mode)
	if err != nil {
		return fileOutputs{}, fmt.Errorf("file %s: %w", in.Name, err)
	}
	name, err := wd.absName(in.Name)
	if err != nil {
		return fileOutputs{}, err
	}
	defer inFlight.start(name)()
	if err := ctx.Err(); err != nil {
		return fileOutputs{}, fmt.Errorf("write file %s: %w", name, err)
	}
	if err := writeAtomic(name, []byte(in.Contents), mode); err != nil {
		return fileOutputs{}, err
	}
	op.Logf("wrote %s (%d bytes, mode %s)", name, len(in.Contents), in.Mode)
	return fileOutputs{SHA256: hashString(in.Contents), Path: name}, nil
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
	name := recordedPath(prior)
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
	name := recordedPath(prior)
	if name == "" {
		return fileOutputs{}, false, nil
	}
	if err := ctx.Err(); err != nil {
		return fileOutputs{}, false, fmt.Errorf("read file %s: %w", name, err)
	}
	f, err := openForReading(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fileOutputs{}, false, nil
	}
	if err != nil {
		return fileOutputs{}, false, fmt.Errorf("read file %s: %w", name, err)
	}
	defer f.Close()
	sum, err := hashFile(f)
	if err != nil {
		return fileOutputs{}, false, fmt.Errorf("read file %s: %w", name, err)
	}
	return fileOutputs{SHA256: sum, Path: prior.Outputs.Path}, true, nil
}

// openForReading is os.Open without Go's poller: os.Open offers every
// file to epoll, which refuses regular files, at the cost of four system
// calls per file (with the leftover's removal below, a refresh made 12
// calls per file, 7 now; BenchmarkReadUnchanged 35 -> 31 us). Reads
// block their thread, as reads of a regular file do anyway.
func openForReading(name string) (*os.File, error) {
	var fd int
	err := eintr.Retry(func() (err error) {
		fd, err = syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// hashFile returns the hex SHA-256 of what is left to read of f. The
// buffer is sized to the file (at most 32 KiB): io.Copy straight from an
// *os.File would take a 32 KiB buffer per file, and refreshing 10,000
// small files then spent more time on allocation and giving memory back
// than on reading.
func hashFile(f *os.File) (string, error) {
	size := int64(32 << 10)
	if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
		size = min(size, max(info.Size()+1, 512))
	}
	h := sha256.New()
	// The struct hides the file's WriteTo, which would ignore the buffer.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
