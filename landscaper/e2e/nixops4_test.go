package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
	"github.com/landscaper-nix/landscaper/proto/nixops4/schematest"
)

// nixops4Deployment declares a provider written to NixOps4's protocol
// (landscaper/nixops4provider/testdata/nixops4-notes.py, started through a
// wrapper that takes its transcript's path from provider args) and uses
// its outputs in another member.
func nixops4Deployment(wrapper, transcript, text string) string {
	return `{ members, providers, ... }: {
  providers.notes = {
    executable = "` + wrapper + `";
    protocol = "nixops4";
    args = [ "` + transcript + `" ];
    resourceTypes.note = { inputs = [ "name" "text" ]; outputs = [ "revision" ]; requireState = true; };
    resourceTypes.file = { inputs = [ "name" "contents" ]; outputs = [ "size" ]; };
  };
  members.note = { type = providers.notes.note; inputs = { name = "note.txt"; text = "` + text + `"; }; };
  members.copy = {
    type = providers.local.file;
    inputs = { name = "out/copy.txt"; contents = "note revision ${toString members.note.outputs.revision}\n"; };
  };
}
`
}

// TestNixOps4Provider runs a NixOps4 provider under Landscaper through plan,
// apply, a plan with nothing to do, and an update; every message both
// sides wrote follows NixOps4's schema.
func TestNixOps4Provider(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(testbin.Root(t), "landscaper", "nixops4provider", "testdata", "nixops4-notes.py")
	wrapper := filepath.Join(dir, "notes-provider")
	writeFile(t, dir, "notes-provider", "#!/bin/sh\nNIXOPS4_TRANSCRIPT=\"$1\" exec /usr/bin/python3 "+script+"\n")
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	transcript := filepath.Join(dir, "transcript")
	writeFile(t, dir, "landscaper.nix", nixops4Deployment(wrapper, transcript, "first"))

	stdout, _ := mustRun(t, dir, 2, "plan", "--detailed-exitcode")
	for _, want := range []string{"note", "NixOps4's protocol v0", "no delete"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the plan does not say %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(transcript); !os.IsNotExist(err) {
		t.Errorf("plan started the NixOps4 provider (it has no plan call): %v", err)
	}

	mustRun(t, dir, 0, "apply", "--auto-approve")
	if got := readFile(t, dir, "note.txt"); got != "first" {
		t.Errorf("note.txt holds %q after apply", got)
	}
	if got := readFile(t, dir, "out/copy.txt"); got != "note revision 1\n" {
		t.Errorf("copy.txt holds %q: the NixOps4 provider's output did not reach the other member", got)
	}
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")

	writeFile(t, dir, "landscaper.nix", nixops4Deployment(wrapper, transcript, "second"))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	if got := readFile(t, dir, "note.txt"); got != "second" {
		t.Errorf("note.txt holds %q after the update", got)
	}
	if got := readFile(t, dir, "out/copy.txt"); got != "note revision 2\n" {
		t.Errorf("copy.txt holds %q after the update, want revision 2 (an update, from the recorded outputs)", got)
	}
	outputs := testbin.StateOutputs(t, dir)
	if rev, _ := outputs["note"]["revision"].(float64); rev != 2 {
		t.Errorf("recorded outputs of note: %v", outputs["note"])
	}

	schema := schematest.Load(t)
	f, err := os.Open(transcript)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kinds []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		side, msg, _ := strings.Cut(sc.Text(), " ")
		if side == ">" {
			schema.Request(t, []byte(msg))
		} else {
			schema.Response(t, []byte(msg))
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(msg, `{"`), `"`)
		kinds = append(kinds, kind)
	}
	want := "createResourceRequest createResourceResponse updateResourceRequest updateResourceResponse"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("messages %s, want %s", got, want)
	}
}
