package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wire "github.com/landscaper-nix/landscaper/proto/nixops4"
	"github.com/landscaper-nix/landscaper/proto/nixops4/schematest"
)

// TestNixOps4Protocol builds landscaper-provider-local and speaks NixOps4's
// protocol to it, as NixOps4 does with provider.args = [ "--nixops4" ]: a
// createResourceRequest for `file` makes the file and answers its outputs.
func TestNixOps4Protocol(t *testing.T) {
	schema := schematest.Load(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "landscaper-provider-local")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/landscaper-nix/landscaper/providers/local/cmd/landscaper-provider-local").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "--nixops4")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	responses := wire.NewReader(stdout)
	send := func(req *wire.Request) *wire.Response {
		t.Helper()
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		schema.Request(t, b)
		if _, err := stdin.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		resp, err := responses.ReadResponse()
		if err != nil {
			t.Fatalf("read the response: %v (stderr: %s)", err, stderr.String())
		}
		b, _ = json.Marshal(resp)
		schema.Response(t, b)
		return resp
	}

	// A relative name is relative to the provider's directory, as in NixOps4.
	resp := send(&wire.Request{CreateResourceRequest: &wire.CreateResourceRequest{
		Type: "file", InputProperties: json.RawMessage(`{"name":"out/greeting.txt","contents":"hello\n"}`), IsStateful: false,
	}})
	if resp.CreateResourceResponse == nil {
		t.Fatalf("got %s (%+v), want a createResourceResponse", resp.Kind(), resp.ErrorResponse)
	}
	path := filepath.Join(dir, "out", "greeting.txt")
	if got := readFile(t, path); got != "hello\n" {
		t.Fatalf("the file holds %q", got)
	}
	var outputs map[string]string
	if err := json.Unmarshal(resp.CreateResourceResponse.OutputProperties, &outputs); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"sha256": sha("hello\n"), "path": path}; !equalMaps(outputs, want) {
		t.Errorf("outputs %v, want %v", outputs, want)
	}

	// Bad input: an error naming the type and the attribute, nothing made.
	resp = send(&wire.Request{CreateResourceRequest: &wire.CreateResourceRequest{
		Type: "file", InputProperties: json.RawMessage(`{"name":"out/other.txt"}`),
	}})
	if resp.ErrorResponse == nil || !strings.Contains(resp.ErrorResponse.Message, "local.file") || !strings.Contains(resp.ErrorResponse.Message, "inputs.contents") {
		t.Errorf("create without contents: %s %+v, want an error naming local.file and inputs.contents", resp.Kind(), resp.ErrorResponse)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "other.txt")); !os.IsNotExist(err) {
		t.Errorf("a refused create made its file (%v)", err)
	}

	// An update of a stateful resource: the contents change in place.
	resp = send(&wire.Request{UpdateResourceRequest: &wire.UpdateResourceRequest{
		Resource: wire.ExtantResource{Type: "file", InputProperties: json.RawMessage(`{"name":"out/greeting.txt","contents":"hello\n"}`),
			OutputProperties: json.RawMessage(`{"sha256":"` + sha("hello\n") + `","path":"` + path + `"}`)},
		InputProperties: json.RawMessage(`{"name":"out/greeting.txt","contents":"bye\n"}`),
	}})
	if resp.UpdateResourceResponse == nil {
		t.Fatalf("update: got %s (%+v)", resp.Kind(), resp.ErrorResponse)
	}
	if got := readFile(t, path); got != "bye\n" {
		t.Errorf("after the update the file holds %q", got)
	}

	// NixOps4 closes stdin to stop a provider: it exits, successfully, and
	// has written nothing but responses to stdout.
	stdin.Close()
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("the provider exited with %v (stderr: %s)", err, stderr.String())
	}
	if len(rest) > 0 {
		t.Errorf("stdout after the last response: %q", rest)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
