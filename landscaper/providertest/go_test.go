package providertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// TestGoProviderOutsideTheRepository builds examples/provider-go (a module
// of its own that requires Landscaper's through a replace) with the go
// tool, runs its sdktest unit tests, and runs its deployment through plan,
// apply, drift (the value changed behind Landscaper's back), a warning, a
// bad input and destroy.
func TestGoProviderOutsideTheRepository(t *testing.T) {
	example := filepath.Join(testbin.Root(t), "examples", "provider-go")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the example provider needs the go tool: %v", err)
	}

	t.Run("its own tests", func(t *testing.T) {
		if stdout, stderr, code := runIn(t, example, goEnv(), goTool, "test", "-count=1", "./..."); code != 0 {
			t.Fatalf("go test ./... in examples/provider-go: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	d := &deployment{t: t, dir: t.TempDir()}
	testbin.CopyExample(t, "provider-go", d.dir)
	if stdout, stderr, code := runIn(t, example, goEnv(), goTool, "build", "-o", filepath.Join(d.dir, "bin")+"/", "./cmd/landscaper-provider-kv"); code != 0 {
		t.Fatalf("go build in examples/provider-go: exit %d\n%s%s", code, stdout, stderr)
	}
	entry := filepath.Join(d.dir, "out", "store", "greeting")
	const secretInput = "not-a-real-password"

	actions, _ := d.plan()
	d.wantActions(actions, map[string]string{"greeting": "create", "receipt": "create"})
	d.landscaper(0, "apply", "--auto-approve")
	if b, err := os.ReadFile(entry); err != nil || !strings.HasPrefix(string(b), "Hello from a provider") {
		t.Fatalf("the entry after apply: %q, %v", b, err)
	}
	if b, err := os.ReadFile(entry + ".secret"); err != nil || string(b) != secretInput {
		t.Fatalf("the entry's secret after apply: %q, %v", b, err)
	}
	receipt, err := os.ReadFile(filepath.Join(d.dir, "out", "receipt.txt"))
	if err != nil || !regexp.MustCompile(`^greeting [0-9a-f]{64} revision 1\n$`).Match(receipt) {
		t.Fatalf("the receipt, made from the entry's outputs: %q, %v", receipt, err)
	}
	token := regexp.MustCompile(`kvtok-[0-9a-f]{32}`).FindString(d.stateText())
	if token == "" {
		t.Fatal("the state has no token output")
	}
	actions, drift := d.plan()
	d.wantActions(actions, map[string]string{})
	if len(drift) != 0 {
		t.Errorf("drift right after apply: %q", drift)
	}

	// Drift: the value changed out of band is seen by Read, planned as an
	// update and put back by apply.
	if err := os.WriteFile(entry, []byte("changed behind Landscaper's back\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	actions, drift = d.plan()
	d.wantActions(actions, map[string]string{"greeting": "update", "receipt": "update"})
	if len(drift) != 1 || !strings.Contains(drift[0], "greeting") || !strings.Contains(drift[0], "sha256") {
		t.Errorf("drift after changing the value out of band: %q, want one line about greeting's sha256", drift)
	}
	d.landscaper(0, "apply", "--auto-approve")
	if b, _ := os.ReadFile(entry); !strings.HasPrefix(string(b), "Hello from a provider") {
		t.Errorf("apply did not put the value back: %q", b)
	}
	if receipt, _ := os.ReadFile(filepath.Join(d.dir, "out", "receipt.txt")); !strings.HasSuffix(string(receipt), "revision 2\n") {
		t.Errorf("the receipt after the update: %q, want revision 2", receipt)
	}

	// Bad input: an error naming the member and the attribute, and
	// nothing changed.
	before := d.stateText()
	d.edit(`key = "greeting";`, `key = "greeting"; maxBytes = 2.5;`)
	_, stderr := d.landscaper(1, "apply", "--auto-approve")
	for _, want := range []string{"greeting", "inputs.maxBytes", "not a whole number"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the error for maxBytes = 2.5 does not say %q:\n%s", want, stderr)
		}
	}
	if d.stateText() != before {
		t.Error("a refused apply changed the state")
	}
	d.edit(` maxBytes = 2.5;`, ``)

	// A warning from the provider's update reaches the user.
	d.edit(`value = "Hello from a provider written outside Landscaper\n";`, `value = "";`)
	stdout, _ := d.landscaper(0, "apply", "--auto-approve")
	if !strings.Contains(stdout, "greeting: Warning: inputs.value: empty value: the entry greeting is written, but holds nothing") {
		t.Errorf("apply did not show the provider's warning:\n%s", stdout)
	}

	d.landscaper(0, "destroy", "--auto-approve")
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("the entry after destroy: %v", err)
	}
	d.neverShown(secretInput, token)
}
