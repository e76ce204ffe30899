package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// TestStateCommands: state list, show and rm.
func TestStateCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.f = { type = providers.local.file; inputs = { name = "out/f"; contents = "eff\n"; mode = "0640"; }; };
  members.grp.members.e = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "echo \"$SHA\"" ]; env.SHA = members.f.outputs.sha256; }; };
}
`)
	mustRun(t, dir, 0, "apply", "--auto-approve")
	fSHA := sha256Hex("eff\n")

	// list
	out, _ := mustRun(t, dir, 0, "state", "list")
	if !strings.Contains(out, "f\tlocal.file") || !strings.Contains(out, "grp.e\tlocal.exec") {
		t.Errorf("state list:\n%s", out)
	}

	// show
	type shown struct {
		Member       string         `json:"member"`
		Type         string         `json:"type"`
		Provider     string         `json:"provider"`
		Inputs       map[string]any `json:"inputs"`
		Outputs      map[string]any `json:"outputs"`
		Dependencies []string       `json:"dependencies"`
	}
	show := func(name string) shown {
		t.Helper()
		out, _ := mustRun(t, dir, 0, "state", "show", name)
		var s shown
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("state show %s is not JSON: %v\n%s", name, err, out)
		}
		return s
	}
	f := show("f")
	if f.Member != "f" || f.Type != "local.file" || f.Provider != "local" {
		t.Errorf("state show f: %+v", f)
	}
	if want := map[string]any{"name": "out/f", "contents": "eff\n", "mode": "0640"}; !reflect.DeepEqual(f.Inputs, want) {
		t.Errorf("state show f inputs = %v, want %v", f.Inputs, want)
	}
	if want := map[string]any{"sha256": fSHA, "path": filepath.Join(dir, "out", "f")}; !reflect.DeepEqual(f.Outputs, want) {
		t.Errorf("state show f outputs = %v, want %v", f.Outputs, want)
	}
	e := show("grp.e")
	if e.Type != "local.exec" || e.Outputs["stdout"] != fSHA+"\n" {
		t.Errorf("state show grp.e: %+v, want outputs.stdout %q", e, fSHA+"\n")
	}
	if env, _ := e.Inputs["env"].(map[string]any); env["SHA"] != fSHA {
		t.Errorf("state show grp.e inputs.env = %v, want SHA = %s", e.Inputs["env"], fSHA)
	}
	if !sameStrings(e.Dependencies, []string{"f"}) {
		t.Errorf("state show grp.e dependencies = %v, want [f]", e.Dependencies)
	}
	if _, stderr, code := run(t, dir, "state", "show", "nope"); code == 0 || !strings.Contains(stderr, "nope") {
		t.Errorf("state show nope: exit %d, stderr %q; want an error naming nope", code, stderr)
	}

	// rm of an unknown member changes nothing.
	before := stateBytes(t, dir)
	if _, stderr, code := run(t, dir, "state", "rm", "nope"); code == 0 || !strings.Contains(stderr, "nope") {
		t.Errorf("state rm nope: exit %d, stderr %q; want an error naming nope", code, stderr)
	}
	if !bytes.Equal(before, stateBytes(t, dir)) {
		t.Errorf("state rm nope changed the state")
	}

	// rm forgets f but leaves its file.
	snap := snapshot(t, dir, "out")
	mustRun(t, dir, 0, "state", "rm", "f")
	if !untouched(t, dir, snap["out/f"], "out/f") {
		t.Errorf("state rm touched out/f")
	}
	if got := stateMembers(t, dir); !sameStrings(got, []string{"grp.e"}) {
		t.Errorf("state list after rm f = %v, want [grp.e]", got)
	}
	if _, _, code := run(t, dir, "state", "show", "f"); code == 0 {
		t.Errorf("state show f after rm: exit 0")
	}
	checkStatePerms(t, dir)
	mustRun(t, dir, 2, "plan", "--detailed-exitcode")
	out, _ = mustRun(t, dir, 0, "plan", "--json")
	if got := actions(planOf(t, events(t, out))); got["f"] != "create" || got["grp.e"] != "no-op" {
		t.Errorf("plan after state rm f = %v, want f created and grp.e no-op", got)
	}
	out, _ = mustRun(t, dir, 0, "apply", "--auto-approve", "--json")
	if got := membersWith(events(t, out), "done"); !sameStrings(got, []string{"f"}) {
		t.Errorf("apply after state rm f finished %v, want [f]", got)
	}
	wantFile(t, dir, "out/f", "eff\n")
	mustRun(t, dir, 0, "plan", "--detailed-exitcode")
}

// TestProvidersListsDeclaredProviders: in a deployment's directory,
// providers lists the providers it declares too, and says where each
// binary comes from.
func TestProvidersListsDeclaredProviders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	local := filepath.Join(testbin.Dir(t), "landscaper-provider-local")
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  providers.mine = { executable = "`+local+`"; };
  members.a = { type = providers.mine.file; inputs = { name = "a"; contents = "a"; }; };
}
`)
	out, _ := mustRun(t, dir, 0, "providers")
	for _, w := range []string{"provider mine", "declared by the deployment (providers.mine)", "mine.file", "provider local", "built in"} {
		if !strings.Contains(out, w) {
			t.Errorf("providers output does not say %q:\n%s", w, out)
		}
	}
	out, _ = mustRun(t, dir, 0, "providers", "--json")
	var all map[string]struct {
		Path   string `json:"path"`
		Origin string `json:"origin"`
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("providers --json: %v\n%s", err, out)
	}
	if all["mine"].Path != local || !strings.Contains(all["mine"].Origin, "declared") {
		t.Errorf("providers --json: mine = %+v, want %s declared by the deployment", all["mine"], local)
	}
}

// TestProvidersCommands: providers lists the local provider's types with
// their inputs, and provider call drives it by hand.
func TestProvidersCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	out, _ := mustRun(t, dir, 0, "providers")
	for _, w := range []string{"local.file", "local.exec",
		"name", "contents", "mode", "sha256",
		"executable", "args", "stdin", "env", "timeout", "destroy", "stdout"} {
		if !strings.Contains(out, w) {
			t.Errorf("providers output does not mention %q:\n%s", w, out)
		}
	}

	out, _ = mustRun(t, dir, 0, "providers", "--json")
	type attr struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Required bool   `json:"required"`
	}
	var all map[string]struct {
		Name  string `json:"name"`
		Types map[string]struct {
			Inputs  []attr `json:"inputs"`
			Outputs []attr `json:"outputs"`
		} `json:"types"`
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("providers --json: %v\n%s", err, out)
	}
	local, ok := all["local"]
	if !ok {
		t.Fatalf("providers --json has no local provider:\n%s", out)
	}
	names := func(as []attr) []string {
		var n []string
		for _, a := range as {
			n = append(n, a.Name)
		}
		return n
	}
	required := func(as []attr) []string {
		var n []string
		for _, a := range as {
			if a.Required {
				n = append(n, a.Name)
			}
		}
		return n
	}
	file, exec := local.Types["file"], local.Types["exec"]
	if got := names(file.Inputs); !sameStrings(got, []string{"name", "contents", "mode"}) {
		t.Errorf("local.file inputs = %v", got)
	}
	if got := required(file.Inputs); !sameStrings(got, []string{"name", "contents"}) {
		t.Errorf("local.file required inputs = %v", got)
	}
	if got := names(file.Outputs); !sameStrings(got, []string{"sha256", "path"}) {
		t.Errorf("local.file outputs = %v", got)
	}
	if got := names(exec.Inputs); !sameStrings(got, []string{"executable", "args", "stdin", "env", "timeout", "destroy"}) {
		t.Errorf("local.exec inputs = %v", got)
	}
	if got := required(exec.Inputs); !sameStrings(got, []string{"executable"}) {
		t.Errorf("local.exec required inputs = %v", got)
	}
	if got := names(exec.Outputs); !sameStrings(got, []string{"stdout", "dir"}) {
		t.Errorf("local.exec outputs = %v", got)
	}

	// provider call creates a file and prints its sha256.
	out, _ = mustRun(t, dir, 0, "provider", "call", "local", "create", "--type", "file", "--inputs", `{"name":"x","contents":"y"}`)
	var rec struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("provider call output: %v\n%s", err, out)
	}
	if rec.Outputs["sha256"] != sha256Hex("y") {
		t.Errorf("provider call create printed sha256 %q, want %q", rec.Outputs["sha256"], sha256Hex("y"))
	}
	wantFile(t, dir, "x", "y")

	// Invalid inputs: an error naming the input, and no file.
	out, _, code := run(t, dir, "provider", "call", "local", "create", "--type", "local.file", "--inputs", `{"name":"z"}`)
	if code == 0 || !strings.Contains(out, "contents") {
		t.Errorf("provider call create without contents: exit %d, output:\n%s", code, out)
	}
	wantNoFile(t, dir, "z")

	// schema prints the same types.
	out, _ = mustRun(t, dir, 0, "provider", "schema", "local")
	if !strings.Contains(out, `"file"`) || !strings.Contains(out, `"exec"`) {
		t.Errorf("provider schema local:\n%s", out)
	}
}

// TestStateLock: a second run fails at once on a locked state, naming the
// holder, or waits for it with --lock-timeout.
func TestStateLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.slow = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "touch started; sleep 3" ]; }; };
}
`)
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	holder := exec.CommandContext(ctx, bin, "apply", "--auto-approve")
	holder.Dir, holder.Env = dir, testEnv()
	var holderOut bytes.Buffer
	holder.Stdout, holder.Stderr = &holderOut, &holderOut
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := holder.Wait(); err != nil {
			t.Errorf("the apply holding the lock: %v\n%s", err, holderOut.String())
		}
	}()
	for !exists(dir, "started") {
		if ctx.Err() != nil {
			t.Fatalf("the slow command never started:\n%s", holderOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := stateBytes(t, dir)
	_, stderr, code := run(t, dir, "apply", "--auto-approve")
	if code == 0 || !strings.Contains(stderr, "locked") || !strings.Contains(stderr, strconv.Itoa(holder.Process.Pid)) {
		t.Errorf("apply on a locked state: exit %d, stderr %q; want an error naming the holder's pid %d", code, stderr, holder.Process.Pid)
	}
	if !bytes.Equal(before, stateBytes(t, dir)) {
		t.Errorf("the refused apply changed the state")
	}
	// Waiting for the lock: the plan sees the finished apply.
	mustRun(t, dir, 0, "plan", "--lock-timeout", "60s", "--detailed-exitcode")
}
