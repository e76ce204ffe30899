package nixcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPaths builds two store paths, one referring to the other, and
// returns the referrer.
func buildPaths(t *testing.T) string {
	t.Helper()
	expr := `let dep = derivation { name = "nixcache-test-dep"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo dep > $out" ]; };
in derivation { name = "nixcache-test-top"; system = builtins.currentSystem; builder = "/bin/sh"; inherit dep; args = [ "-c" "echo $dep > $out" ]; }`
	cmd := exec.Command("nix-build", "--no-out-link", "-E", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func nixOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return strings.TrimSpace(string(out))
}

func TestClosureMatchesNix(t *testing.T) {
	top := buildPaths(t)
	infos, err := Closure(context.Background(), top)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("closure of %s: %d paths, want 2", top, len(infos))
	}
	for _, p := range infos {
		if want := nixOutput(t, "nix-store", "-q", "--hash", p.Path); p.NarHash != want {
			t.Errorf("%s: NarHash %s, nix-store says %s", p.Path, p.NarHash, want)
		}
		var nar bytes.Buffer
		if err := DumpPath(context.Background(), p.Path, &nar); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(nar.Bytes())
		if got := "sha256:" + Nix32(sum[:]); got != p.NarHash || int64(nar.Len()) != p.NarSize {
			t.Errorf("%s: NAR hashes to %s (%d bytes), want %s (%d bytes)", p.Path, got, nar.Len(), p.NarHash, p.NarSize)
		}
	}
}

// TestSignatureMatchesNix signs a path with a key nix made, with nix and
// with this package: ed25519 signatures are deterministic, so both must
// be the same.
func TestSignatureMatchesNix(t *testing.T) {
	top := buildPaths(t)
	dir := t.TempDir()
	secretFile, publicFile := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	gen := exec.Command("sh", "-c", `nix-store --generate-binary-cache-key test-cache-1 "$1" "$2"`, "sh", secretFile, publicFile)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generate key: %v: %s", err, out)
	}
	secret, _ := os.ReadFile(secretFile)
	public, _ := os.ReadFile(publicFile)
	key, err := ParseSecretKey(string(secret))
	if err != nil {
		t.Fatal(err)
	}
	if key.Public() != strings.TrimSpace(string(public)) {
		t.Fatalf("public key %s, nix made %s", key.Public(), public)
	}
	infos, err := Closure(context.Background(), top)
	if err != nil {
		t.Fatal(err)
	}
	// nix store sign writes into a store; use a copy of the closure in a
	// store of its own so this machine's store is left alone.
	store := filepath.Join(dir, "store")
	nixOutput(t, "nix", "--extra-experimental-features", "nix-command", "copy", "--no-check-sigs", "--to", store, top)
	nixOutput(t, "nix", "--extra-experimental-features", "nix-command", "store", "sign", "--store", store, "--key-file", secretFile, top)
	raw := nixOutput(t, "nix", "--extra-experimental-features", "nix-command", "path-info", "--store", store, "--json", top)
	var signed []struct {
		Signatures []string `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(raw), &signed); err != nil || len(signed) != 1 {
		t.Fatalf("path-info: %v: %s", err, raw)
	}
	var info PathInfo
	for _, p := range infos {
		if p.Path == top {
			info = p
		}
	}
	ours := key.Sign(info.Fingerprint())
	found := false
	for _, s := range signed[0].Signatures {
		found = found || s == ours
	}
	if !found {
		t.Fatalf("our signature %s is not among nix's %v (fingerprint %s)", ours, signed[0].Signatures, info.Fingerprint())
	}
	if err := Verify(key.Public(), info.Fingerprint(), ours); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	key, _ := GenerateKey("a-1")
	other, _ := GenerateKey("a-1")
	renamed := SecretKey{Name: "b-1", Key: key.Key}
	fp := "1;/nix/store/x;sha256:0;1;"
	for _, c := range []struct {
		name, pub, sig string
	}{
		{"other key", other.Public(), key.Sign(fp)},
		{"other name", key.Public(), renamed.Sign(fp)},
		{"other text", key.Public(), key.Sign(fp + "x")},
		{"no name", key.Public(), "abc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := Verify(c.pub, fp, c.sig); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseSecretKeyRefuses(t *testing.T) {
	for _, s := range []string{"", "name", "name:", ":AAAA", "name:not base64!", "name:AAAA"} {
		if _, err := ParseSecretKey(s); err == nil {
			t.Errorf("ParseSecretKey(%q) accepted it", s)
		}
	}
	k, _ := GenerateKey("k-1")
	back, err := ParseSecretKey(k.String())
	if err != nil || back.Public() != k.Public() {
		t.Fatalf("round trip: %v", err)
	}
}
