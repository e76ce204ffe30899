package providertest

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// python is Debian's python3, which has the python3-grpcio,
// python3-grpc-tools, python3-protobuf and python3-cryptography that
// scripts/install-deps.sh installs (another python3 on PATH may not).
const python = "/usr/bin/python3"

// TestPythonProvider runs examples/provider-python, a provider written in
// Python that speaks the resource protocol and go-plugin's handshake
// itself, through plan, apply, drift, a replacement and destroy, and
// checks that its sensitive output is never shown.
func TestPythonProvider(t *testing.T) {
	d := &deployment{t: t, dir: t.TempDir()}
	copyTree(t, filepath.Join(testbin.Root(t), "examples", "provider-python"), d.dir)
	tokenID := filepath.Join(d.dir, "out", "token-id")

	actions, _ := d.plan()
	d.wantActions(actions, map[string]string{"token": "create", "secretCopy": "create", "idCopy": "create"})
	d.landscaper(0, "apply", "--auto-approve")
	id := readTrimmed(t, tokenID)
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Fatalf("the token's id file holds %q", id)
	}
	if got := readTrimmed(t, filepath.Join(d.dir, "out", "id-copy")); got != "id "+id {
		t.Errorf("idCopy, made from the token's id output: %q, want %q", got, "id "+id)
	}
	secret := stateOutput(t, d, "token", "secret")
	if !regexp.MustCompile(`^[0-9a-f]{48}$`).MatchString(secret) {
		t.Fatalf("the token's secret output (length 24): %q", secret)
	}
	if got := readTrimmed(t, filepath.Join(d.dir, "out", "secret-copy")); got != secret {
		t.Errorf("secretCopy does not hold the token's secret")
	}
	actions, drift := d.plan()
	d.wantActions(actions, map[string]string{})
	if len(drift) != 0 {
		t.Errorf("drift right after apply: %q", drift)
	}
	d.landscaper(0, "plan", "--detailed-exitcode")

	// Drift: the id file removed behind Landscaper's back; Read reports
	// the token gone and the plan makes it again.
	if err := os.Remove(tokenID); err != nil {
		t.Fatal(err)
	}
	actions, drift = d.plan()
	d.wantActions(actions, map[string]string{"token": "create", "secretCopy": "update", "idCopy": "update"})
	if len(drift) != 1 || !strings.Contains(drift[0], "token") {
		t.Errorf("drift after removing the id file: %q, want one line about token", drift)
	}

	// A changed input replaces the token; a bad one is refused with its
	// path and changes nothing.
	d.edit(`length = 24;`, `length = 7;`)
	before := d.stateText()
	_, stderr := d.landscaper(1, "plan")
	for _, want := range []string{"token", "inputs.length", "length must be 8 to 64"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the error for length = 7 does not say %q:\n%s", want, stderr)
		}
	}
	if d.stateText() != before {
		t.Error("a refused plan changed the state")
	}
	d.edit(`length = 7;`, `length = 32;`)
	d.landscaper(0, "apply", "--auto-approve")
	newSecret := stateOutput(t, d, "token", "secret")
	if len(newSecret) != 64 || newSecret == secret {
		t.Errorf("after length = 32 the secret is %d hex digits (changed: %v), want a new one of 64", len(newSecret), newSecret != secret)
	}

	d.landscaper(0, "destroy", "--auto-approve")
	if _, err := os.Stat(tokenID); !os.IsNotExist(err) {
		t.Errorf("the id file after destroy: %v", err)
	}
	d.neverShown(secret, newSecret)
}

// TestPythonStubsAreCurrent: the Python modules checked in under
// examples/provider-python/gen are what grpc_tools makes of proto/ now
// (make generate writes them).
func TestPythonStubsAreCurrent(t *testing.T) {
	root := testbin.Root(t)
	out := t.TempDir()
	cmd := exec.Command(python, "-m", "grpc_tools.protoc", "-Iproto", "--python_out="+out, "--grpc_python_out="+out, "landscaper/resource/v1/resource.proto")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("grpc_tools.protoc (Debian's python3-grpc-tools; scripts/install-deps.sh installs it): %v\n%s", err, b)
	}
	gen := filepath.Join(root, "examples", "provider-python", "gen")
	for _, name := range []string{"resource_pb2.py", "resource_pb2_grpc.py"} {
		rel := filepath.Join("landscaper", "resource", "v1", name)
		want, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(gen, rel))
		if err != nil {
			t.Fatalf("%v (run make generate)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/provider-python/gen/%s is not what proto/ makes now: run make generate", rel)
		}
	}
}

// copyTree copies the files under src into dst, keeping their modes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if e.IsDir() {
			if e.Name() == "__pycache__" || e.Name() == "out" || e.Name() == ".landscaper" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// stateOutput is a member's string output as the state file records it.
func stateOutput(t *testing.T, d *deployment, member, name string) string {
	t.Helper()
	var st struct {
		Resources map[string]struct {
			Outputs map[string]any `json:"outputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(d.stateText()), &st); err != nil {
		t.Fatalf("decode the state: %v", err)
	}
	s, _ := st.Resources[member].Outputs[name].(string)
	if s == "" {
		t.Fatalf("the state has no output %s of %s", name, member)
	}
	return s
}
