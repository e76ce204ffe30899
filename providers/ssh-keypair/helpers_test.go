package sshkeypair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
	sshkeypair "github.com/landscaper-nix/landscaper/providers/ssh-keypair"
)

const typ = "ssh-keypair.keypair"

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	return sdktest.New(t, sshkeypair.Provider())
}

// outputs are the decoded outputs of a key pair.
type outputs struct {
	PublicKey   string `json:"publicKey"`
	PrivateKey  string `json:"privateKey"`
	Fingerprint string `json:"fingerprint"`
}

func decodeOutputs(t *testing.T, doc json.RawMessage) outputs {
	t.Helper()
	var o outputs
	if err := json.Unmarshal(doc, &o); err != nil {
		// Do not print doc: it holds the private key.
		t.Fatalf("decode outputs: %v", err)
	}
	return o
}

func stateOutputs(t *testing.T, s *resource.State) outputs {
	t.Helper()
	return decodeOutputs(t, s.Outputs.JSON)
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

// hasErrorAt reports whether diags has an error at the attribute path
// (written as Path.String writes it) whose text contains want.
func hasErrorAt(diags resource.Diagnostics, path, want string) bool {
	for _, d := range diags {
		if d.Severity == resource.SeverityError && d.Attribute.String() == path && strings.Contains(d.String(), want) {
			return true
		}
	}
	return false
}

func plannedOutputs(t *testing.T, r *resource.PlanResponse) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal(r.PlannedOutputs, &m); err != nil {
		t.Fatalf("decode planned outputs: %v", err)
	}
	return m
}

func pathStrings(ps []resource.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// keyPart is "type base64" of an authorized_keys line, without comment.
func keyPart(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[0] + " " + f[1]
}

// fingerprintOf computes the SHA256 fingerprint of an authorized_keys line
// independently of x/crypto: unpadded base64 of the SHA-256 of the blob.
func fingerprintOf(t *testing.T, line string) string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("public key %q has no key blob", line)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		t.Fatalf("public key blob: %v", err)
	}
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// writeKey writes a private key to a 0600 file of its own directory, with
// no .pub next to it (ssh-keygen -l would read that instead).
func writeKey(t *testing.T, privateKey string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(name, []byte(privateKey), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed (scripts/install-deps.sh installs it)", name)
	}
	return p
}

// run runs a command and returns its standard output; it fails the test
// with the standard error on a non-zero exit.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// secretFragments are pieces of a private key that must never show: the
// whole key and every full line of its base64 body.
func secretFragments(privateKey string) []string {
	frags := []string{privateKey}
	for _, line := range strings.Split(privateKey, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			frags = append(frags, line)
		}
	}
	return frags
}

// assertNoSecret fails the test if any of texts holds a piece of the
// private key. It never prints the key.
func assertNoSecret(t *testing.T, privateKey, where string, texts ...string) {
	t.Helper()
	if privateKey == "" {
		t.Fatalf("%s: no private key to look for", where)
	}
	for _, text := range texts {
		for _, frag := range secretFragments(privateKey) {
			if strings.Contains(text, frag) {
				t.Fatalf("%s shows private key material", where)
			}
		}
	}
}

func eventTexts(evs ...*sdktest.Events) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Logs...)
		out = append(out, e.ProgressMessages...)
	}
	return out
}

func diagTexts(diags resource.Diagnostics) []string {
	out := make([]string, len(diags))
	for i, d := range diags {
		out[i] = d.String()
	}
	return out
}

func writeFile(t *testing.T, name, contents string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
}
