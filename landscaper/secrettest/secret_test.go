// Package secrettest checks end to end that a sensitive output (a private
// key) reaches only the inputs of the provider that needs it: never a plan,
// a log line, a --json event, `state show`, `state list` or the Nix store.
package secrettest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

const deployment = `{ members, providers, ... }: {
  members.deployKey = { type = providers.ssh-keypair.keypair; inputs = { algorithm = "ed25519"; comment = "deployer"; }; };
  members.keyFile = { type = providers.local.file; inputs = { name = "secrets/deploy_key"; contents = members.deployKey.outputs.privateKey; mode = "0600"; }; };
  members.wrapped = { type = providers.local.file; inputs = { name = "secrets/wrapped"; contents = "key follows\n${members.deployKey.outputs.privateKey}"; }; };
  members.pub = { type = providers.local.file; inputs = { name = "pub"; contents = members.deployKey.outputs.publicKey; }; };
  members.echo = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "cat >&2; echo done" ]; stdin = members.deployKey.outputs.privateKey; }; };
}
`

type run struct {
	args           []string
	stdout, stderr string
}

func landscaper(t *testing.T, dir string, args ...string) run {
	t.Helper()
	cmd := exec.Command(filepath.Join(testbin.Dir(t), "landscaper"), args...)
	cmd.Dir = dir
	// Plugin logs at the most verbose level go to stderr, so they are
	// searched too.
	cmd.Env = append(os.Environ(), "LANDSCAPER_LOG=trace", "LANDSCAPER_PROVIDER_LOG=trace", "NIX_CONFIG=substituters =")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("landscaper %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return run{args: args, stdout: stdout.String(), stderr: stderr.String()}
}

func storePaths(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir("/nix/store")
	if err != nil {
		t.Fatalf("read /nix/store: %v", err)
	}
	paths := map[string]bool{}
	for _, e := range entries {
		paths[e.Name()] = true
	}
	return paths
}

// secretPieces returns the private key and each line of its base64 body,
// so that a key leaked in pieces is found too.
func secretPieces(key string) []string {
	pieces := []string{key}
	for _, line := range strings.Split(key, "\n") {
		if len(line) >= 20 && !strings.HasPrefix(line, "-----") {
			pieces = append(pieces, line)
		}
	}
	return pieces
}

func TestPrivateKeyNeverLeaks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(deployment), 0o644); err != nil {
		t.Fatal(err)
	}
	before := storePaths(t)
	var runs []run
	runs = append(runs, landscaper(t, dir, "plan"))
	runs = append(runs, landscaper(t, dir, "apply", "--auto-approve"))
	runs = append(runs, landscaper(t, dir, "plan", "--json"))
	runs = append(runs, landscaper(t, dir, "state", "list"))
	for _, m := range []string{"deployKey", "keyFile", "wrapped", "echo"} {
		runs = append(runs, landscaper(t, dir, "state", "show", m))
	}
	// A change that makes the engine show the old and new inputs.
	changed := strings.Replace(deployment, `"key follows\n`, `"key follows:\n`, 1)
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	runs = append(runs, landscaper(t, dir, "plan"))
	runs = append(runs, landscaper(t, dir, "apply", "--auto-approve", "--json"))

	key, err := os.ReadFile(filepath.Join(dir, "secrets", "deploy_key"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(key), "BEGIN OPENSSH PRIVATE KEY") {
		t.Fatalf("the key file does not hold a private key:\n%s", key)
	}
	info, err := os.Stat(filepath.Join(dir, "secrets", "deploy_key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	wrapped, _ := os.ReadFile(filepath.Join(dir, "secrets", "wrapped"))
	if !strings.HasSuffix(string(wrapped), string(key)) {
		t.Errorf("the interpolated secret was not substituted: %q", wrapped)
	}
	pieces := secretPieces(string(key))
	for _, r := range runs {
		for _, p := range pieces {
			if strings.Contains(r.stdout, p) || strings.Contains(r.stderr, p) {
				t.Errorf("landscaper %s printed key material %q", strings.Join(r.args, " "), p)
			}
		}
	}
	// Every output stream that shows the members shows (sensitive) instead.
	if !strings.Contains(runs[0].stdout, "(sensitive)") && !strings.Contains(runs[0].stdout, "(known after apply)") {
		t.Errorf("plan shows neither (sensitive) nor (known after apply) for the key:\n%s", runs[0].stdout)
	}
	show := landscaper(t, dir, "state", "show", "keyFile")
	var shown map[string]any
	if err := json.Unmarshal([]byte(show.stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if shown["inputs"].(map[string]any)["contents"] != "(sensitive)" {
		t.Errorf("state show keyFile: contents = %v, want (sensitive)", shown["inputs"].(map[string]any)["contents"])
	}
	revealed := landscaper(t, dir, "state", "show", "keyFile", "--show-sensitive")
	if !strings.Contains(revealed.stdout, pieces[1]) {
		t.Errorf("state show --show-sensitive does not show the key")
	}
	// Nothing the run added to the Nix store holds the key.
	for name := range storePaths(t) {
		if before[name] {
			continue
		}
		_ = filepath.WalkDir(filepath.Join("/nix/store", name), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, p := range pieces {
				if bytes.Contains(b, []byte(p)) {
					t.Errorf("store path %s holds key material", path)
				}
			}
			return nil
		})
	}
	// The state file holds the key (that is where it is kept) and is 0600.
	st, err := os.Stat(filepath.Join(dir, ".landscaper", "state.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func TestSecondApplyKeepsTheKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(deployment), 0o644); err != nil {
		t.Fatal(err)
	}
	landscaper(t, dir, "apply", "--auto-approve")
	fingerprint := func() string {
		var shown map[string]any
		out := landscaper(t, dir, "state", "show", "deployKey").stdout
		if err := json.Unmarshal([]byte(out), &shown); err != nil {
			t.Fatal(err)
		}
		return shown["outputs"].(map[string]any)["fingerprint"].(string)
	}
	first := fingerprint()
	landscaper(t, dir, "apply", "--auto-approve")
	if second := fingerprint(); second != first || !strings.HasPrefix(first, "SHA256:") {
		t.Errorf("fingerprint %q after the second apply, %q after the first", second, first)
	}
	cmd := exec.Command(filepath.Join(testbin.Dir(t), "landscaper"), "plan", "--detailed-exitcode")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("plan after two applies is not clean: %v\n%s", err, out)
	}
}

// A sensitive output that Nix code computes with (hashes it) is refused
// with a message naming the member, rather than sent through Nix.
func TestComputingWithASecretIsRefused(t *testing.T) {
	dir := t.TempDir()
	d := `{ members, providers, ... }: {
  members.k = { type = providers.ssh-keypair.keypair; };
  members.h = { type = providers.local.file; inputs = { name = "h"; contents = builtins.hashString "sha256" members.k.outputs.privateKey; }; };
}
`
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(d), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(testbin.Dir(t), "landscaper"), "apply", "--auto-approve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("apply succeeded; want a refusal:\n%s", out)
	}
	if !strings.Contains(string(out), "member h") || !strings.Contains(string(out), "sensitive") {
		t.Errorf("the error does not name member h and the sensitive output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "h")); err == nil {
		t.Error("the file computed from the secret was written")
	}
}
