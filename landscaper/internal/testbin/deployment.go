package testbin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CopyExample copies the Nix files of examples/NAME into dir, leaving out
// a params.local.nix (each test writes its own).
func CopyExample(t testing.TB, name, dir string) {
	t.Helper()
	src := filepath.Join(Root(t), "examples", name)
	files, err := filepath.Glob(filepath.Join(src, "*.nix"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .nix files in %s (%v)", src, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) == "params.local.nix" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// StateOutputs reads every member's outputs, sensitive ones included, from
// the file state of the deployment in dir.
func StateOutputs(t testing.TB, dir string) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".landscaper", "state.json"))
	if err != nil {
		t.Fatalf("read the state: %v", err)
	}
	var st struct {
		Resources map[string]struct {
			Outputs map[string]any `json:"outputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("decode the state: %v", err)
	}
	out := map[string]map[string]any{}
	for name, r := range st.Resources {
		out[name] = r.Outputs
	}
	return out
}

// OutputString is a member's string output; the test fails when it is
// missing or empty.
func OutputString(t testing.TB, outputs map[string]map[string]any, member, name string) string {
	t.Helper()
	s, _ := outputs[member][name].(string)
	if s == "" {
		t.Fatalf("the state has no output %s of %s", name, member)
	}
	return s
}

// SecretLines are the lines of a PEM private key that carry key material
// (all but the BEGIN and END lines), leaving out a short last line that
// could occur in other text by chance: what must never appear in an
// output or a log.
func SecretLines(key string) []string {
	var lines []string
	for _, l := range strings.Split(key, "\n") {
		if l = strings.TrimSpace(l); len(l) >= 20 && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}
