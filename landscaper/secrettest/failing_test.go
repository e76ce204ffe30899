package secrettest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// failingDeployment hands a private key to commands that print it on
// stderr and fail: whole, and as the end of a stderr line longer than the
// 64 KiB at which local.exec cuts lines, at several offsets so that the
// cut falls inside a line of the key.
const failingDeployment = `{ members, providers, ... }: let
  key = members.deployKey.outputs.privateKey;
  # Pads stderr with n bytes, then prints the key's first body line on the
  # same line, then fails.
  cutAt = n: { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "head -c ${toString n} /dev/zero | tr '\\0' x >&2; printf '%s\\n' \"$1\" | sed -n 2p >&2; exit 4" "sh" key ]; }; };
in {
  members.deployKey = { type = providers.ssh-keypair.keypair; inputs = { algorithm = "ed25519"; }; };
  members.hook = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "printf '%s\\n' \"$1\" >&2; exit 3" "sh" key ]; }; };
  members.cut34 = cutAt 65502;
  members.cut8 = cutAt 65528;
  members.cut60 = cutAt 65476;
  members.cut1 = cutAt 65535;
  # A command that was given no secret but reads one that another member
  # wrote: only the engine knows what to hide.
  members.keyFile = { type = providers.local.file; inputs = { name = "key"; contents = key; mode = "0600"; }; };
  members.catKey = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "cat key >&2; exit 5" members.keyFile.outputs.sha256 ]; }; };
}
`

// leaks reports the first piece of a key line, 12 bytes or more, that text
// shows.
func leaks(text, key string) (string, bool) {
	const window = 12
	for _, line := range strings.Split(key, "\n") {
		if strings.HasPrefix(line, "-----") || len(line) < window {
			continue
		}
		for i := 0; i+window <= len(line); i++ {
			if strings.Contains(text, line[i:i+window]) {
				return line[i : i+window], true
			}
		}
	}
	return "", false
}

// failingRun runs landscaper, which must fail with exit code 1.
func failingRun(t *testing.T, dir string, args ...string) run {
	t.Helper()
	cmd := exec.Command(filepath.Join(testbin.Dir(t), "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LANDSCAPER_LOG=trace", "LANDSCAPER_PROVIDER_LOG=trace", "NIX_CONFIG=substituters =")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("landscaper %s: %v, want exit code 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return run{args: args, stdout: stdout.String(), stderr: stderr.String()}
}

// Members that fail after printing a key, given to them or read from a
// file another member wrote: the progress,
// the error, the summary and the JSON events show no piece of it, in text
// and --json mode, also when a long line is cut inside a key line.
func TestFailingMembersNeverLeak(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "landscaper.nix"), []byte(failingDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := []run{
		failingRun(t, dir, "apply", "--auto-approve"),
		failingRun(t, dir, "apply", "--auto-approve", "--json"),
	}
	key := landscaper(t, dir, "state", "show", "deployKey", "--show-sensitive").stdout
	if !strings.Contains(key, "BEGIN OPENSSH PRIVATE KEY") {
		t.Fatalf("state show --show-sensitive shows no private key:\n%s", key)
	}
	// The JSON string escapes newlines: take the key from it.
	start := strings.Index(key, "-----BEGIN")
	end := strings.Index(key, "-----END OPENSSH PRIVATE KEY-----")
	privateKey := strings.ReplaceAll(key[start:end], `\n`, "\n")
	for _, r := range runs {
		for name, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
			if piece, ok := leaks(text, privateKey); ok {
				i := strings.Index(text, piece)
				t.Errorf("landscaper %s: its %s shows %q of the private key: ...%s...", strings.Join(r.args, " "), name, piece, text[max(0, i-200):min(len(text), i+100)])
			}
		}
		all := r.stdout + r.stderr
		for _, member := range []string{"hook", "cut34", "cut8", "cut60", "cut1", "catKey"} {
			if !strings.Contains(all, member) {
				t.Errorf("landscaper %s does not name the failed member %s", strings.Join(r.args, " "), member)
			}
		}
		if !strings.Contains(all, "(sensitive)") {
			t.Errorf("landscaper %s shows no (sensitive) where the key was printed", strings.Join(r.args, " "))
		}
	}
	if !strings.Contains(runs[0].stderr, "Error:") || !strings.Contains(runs[0].stderr, "last 1 lines of its stderr") {
		t.Errorf("the error does not show the tail of the failed command's stderr:\n%s", runs[0].stderr)
	}
}
