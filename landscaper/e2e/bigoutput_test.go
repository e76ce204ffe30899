package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// bigOutputDeployment has a local.exec, big, that prints n bytes of "a",
// and a file holding the hash of its stdout.
func bigOutputDeployment(n int) string {
	return `{ members, providers, ... }: {
  members.big = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "head -c ` + strconv.Itoa(n) + ` /dev/zero | tr '\\0' a" ]; }; };
  members.sum = { type = providers.local.file; inputs = { name = "out/sum"; contents = builtins.hashString "sha256" members.big.outputs.stdout; }; };
}
`
}

// recordedStdout returns the stdout big has in the state file, and
// whether it has a record.
func recordedStdout(t *testing.T, dir string) (string, bool) {
	t.Helper()
	st := parseStateFile(t, statePath(dir))
	r, ok := st.Resources["big"]
	if !ok {
		return "", false
	}
	var out struct{ Stdout string }
	if err := json.Unmarshal(r.Outputs, &out); err != nil {
		t.Fatalf("big's recorded outputs: %v", err)
	}
	return out.Stdout, true
}

// wantClean checks that the state records nothing and has nothing
// pending, and that big's files are gone.
func wantClean(t *testing.T, dir string) {
	t.Helper()
	st := parseStateFile(t, statePath(dir))
	if len(st.Resources) != 0 || len(st.Pending) != 0 {
		t.Errorf("state records %v with %v pending; want nothing", names(st.Resources), names(st.Pending))
	}
	wantNoFile(t, dir, "out/sum")
}

// TestBigOutput: a local.exec whose stdout is 5 MB (more than gRPC's
// default 4 MiB) is applied and recorded, its dependent gets it, and
// plan, an update and destroy work afterwards. Before
// the provider connection's limits were set on both sides, every call
// after the apply failed with "grpc: received message larger than max
// (5000123 vs. 4194304)", and destroy left a delete pending that could
// not be settled.
func TestBigOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const size = 5_000_000
	writeFile(t, dir, "landscaper.nix", bigOutputDeployment(size))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	if got, ok := recordedStdout(t, dir); !ok || len(got) != size {
		t.Fatalf("state: big recorded %v with %d bytes of stdout, want %d", ok, len(got), size)
	}
	wantFile(t, dir, "out/sum", sha256Hex(strings.Repeat("a", size)))

	mustRun(t, dir, 0, "plan", "--detailed-exitcode")

	writeFile(t, dir, "landscaper.nix", bigOutputDeployment(size+1))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	if got, _ := recordedStdout(t, dir); len(got) != size+1 {
		t.Errorf("after the update big's recorded stdout has %d bytes, want %d", len(got), size+1)
	}
	wantFile(t, dir, "out/sum", sha256Hex(strings.Repeat("a", size+1)))

	mustRun(t, dir, 0, "destroy", "--auto-approve")
	wantClean(t, dir)
}

// TestOutputOverExecLimit: a local.exec whose stdout is more than the
// 16 MiB local.exec records fails with an error that names the member,
// the output and the limit; nothing of it is recorded (no record, no
// pending operation), its dependents are skipped, and plan, apply and
// destroy work afterwards.
func TestOutputOverExecLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", bigOutputDeployment(16<<20+1))
	stdout, stderr, code := run(t, dir, "apply", "--auto-approve", "--json")
	if code != 1 {
		t.Fatalf("apply of a stdout over the limit: exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{"member big", "more than 16 MiB", "outputs.stdout", "nothing was recorded"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("apply's error does not say %q:\n%s", want, stderr)
		}
	}
	if got := membersWith(events(t, stdout), "skipped"); !sameStrings(got, []string{"sum"}) {
		t.Errorf("skipped %v, want big's dependent sum", got)
	}
	wantClean(t, dir)

	mustRun(t, dir, 2, "plan", "--detailed-exitcode")
	mustRun(t, dir, 0, "destroy", "--auto-approve")
	writeFile(t, dir, "landscaper.nix", bigOutputDeployment(3))
	mustRun(t, dir, 0, "apply", "--auto-approve")
	wantFile(t, dir, "out/sum", sha256Hex("aaa"))
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")
	mustRun(t, dir, 0, "destroy", "--auto-approve")
	wantClean(t, dir)
}

// TestBigStateFromOlderVersion: the state an older landscaper left after
// recording a 5 MB output and failing to destroy it (the record, and the
// delete pending) is settled by the next plan, and destroyed.
func TestBigStateFromOlderVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const size = 5_000_000
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: { }`+"\n")
	inputs := json.RawMessage(`{"args":["-c","head -c 5000000 /dev/zero | tr '\\0' a"],"executable":"sh"}`)
	outputs, err := json.Marshal(map[string]string{"stdout": strings.Repeat("a", size)})
	if err != nil {
		t.Fatal(err)
	}
	old := state.State{
		Version: 1, Lineage: "1a5acd8d-ef09-44bd-b773-2707b7d8fec1", Serial: 3,
		Resources: map[string]*state.Resource{"big": {Type: "local.exec", Provider: "local", Inputs: inputs, Outputs: outputs}},
		Pending:   map[string]*state.Pending{"big": {Operation: state.OpDelete, Type: "local.exec", Provider: "local", Inputs: inputs, Since: time.Date(2026, 12, 3, 3, 2, 6, 0, time.UTC)}},
	}
	data, err := json.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(statePath(dir)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath(dir), data, 0o600); err != nil {
		t.Fatal(err)
	}
	parseStateFile(t, statePath(dir))

	// The deployment no longer has big: the plan settles the pending
	// delete (local.exec has no Read: the resource exists) and plans it
	// deleted.
	stdout, _ := mustRun(t, dir, 2, "plan", "--detailed-exitcode", "--json")
	if got := actions(planOf(t, events(t, stdout)))["big"]; got != "delete" {
		t.Errorf("plan: big's action is %q, want delete", got)
	}
	mustRun(t, dir, 0, "destroy", "--auto-approve")
	wantClean(t, dir)
}
