package pxenbp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/proto/resource"
	pxenbp "github.com/landscaper-nix/landscaper/providers/pxe-nbp"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

const (
	typ       = "pxe-nbp.entry"
	mac       = "52:54:00:12:34:56"
	macHyphen = "52-54-00-12-34-56"
)

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	return sdktest.New(t, pxenbp.Provider())
}

// bootFiles makes a kernel and two initrds in a temporary directory.
type bootFiles struct {
	Kernel  string
	Initrds []string
}

func makeBootFiles(t *testing.T) bootFiles {
	t.Helper()
	dir := t.TempDir()
	write := func(name, contents string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(contents), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return bootFiles{
		Kernel:  write("bzImage", "kernel"),
		Initrds: []string{write("initrd", "initrd"), write("initrd-2", "second initrd")},
	}
}

// inputs returns inputs for an entry in bootDir with the boot files.
func (b bootFiles) inputs(bootDir string) map[string]any {
	return map[string]any{
		"mac":     mac,
		"kernel":  b.Kernel,
		"initrd":  []any{b.Initrds[0]},
		"cmdline": "init=/nix/store/x-nixos-system/init console=ttyS0",
		"bootDir": bootDir,
	}
}

// with returns a copy of m with the given keys set.
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func file(contents, mode string) map[string]any {
	f := map[string]any{"contents": contents}
	if mode != "" {
		f["mode"] = mode
	}
	return f
}

// validate runs Validate and returns its diagnostics.
func validate(t *testing.T, h *sdktest.Harness, inputs any, unknown ...resource.Path) resource.Diagnostics {
	t.Helper()
	diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: typ, Name: "test", Inputs: resource.Values{JSON: h.JSON(inputs)}, Unknown: unknown})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return diags
}

// errorPaths lists the attribute paths of the error diagnostics.
func errorPaths(diags resource.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		if d.Severity == resource.SeverityError {
			out = append(out, d.Attribute.String())
		}
	}
	return out
}

func pathStrings(ps []resource.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func mustPath(t *testing.T, s string) resource.Path {
	t.Helper()
	p, err := resource.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func plannedOutputs(t *testing.T, r *resource.PlanResponse) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal(r.PlannedOutputs, &m); err != nil {
		t.Fatalf("decode planned outputs %s: %v", r.PlannedOutputs, err)
	}
	return m
}

func getEntry(t *testing.T, bootDir string) *bootentry.Version {
	t.Helper()
	v, err := bootentry.Store{Dir: bootDir}.Get(mac)
	if err != nil {
		t.Fatalf("Store.Get: %v", err)
	}
	return v
}

// unpacked is a file found in an extra initrd.
type unpacked struct {
	Contents string
	Mode     os.FileMode
}

// unpackExtra unpacks an extra initrd with GNU cpio and returns its
// regular files by absolute path and its directories' modes.
func unpackExtra(t *testing.T, archive string) (map[string]unpacked, map[string]os.FileMode) {
	t.Helper()
	bin, err := exec.LookPath("cpio")
	if err != nil {
		t.Fatalf("GNU cpio is needed to check the extra initrd but is not installed (on Debian: apt-get install cpio; scripts/install-deps.sh should install it): %v", err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-i", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("cpio -i of the extra initrd: %v\n%s", err, stderr.String())
	}
	files := map[string]unpacked{}
	dirs := map[string]os.FileMode{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs["/"+filepath.ToSlash(rel)] = fi.Mode() &^ os.ModeType
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files["/"+filepath.ToSlash(rel)] = unpacked{string(b), fi.Mode()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, dirs
}
