package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

func TestExecRun(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		inputs map[string]any
		stdout string
	}{
		{"stdout", map[string]any{"executable": "echo", "args": []string{"hello", "world"}}, "hello world\n"},
		{"no args", map[string]any{"executable": "true"}, ""},
		{"args kept apart", map[string]any{"executable": "printf", "args": []string{"[%s]", "a b", "c"}}, "[a b][c]"},
		{"stdin", map[string]any{"executable": "cat", "stdin": "from stdin\n"}, "from stdin\n"},
		{"no stdin", map[string]any{"executable": "cat"}, ""},
		{"env", map[string]any{"executable": "sh", "args": []string{"-c", `printf %s "$GREETING-$PATH_SET"`}, "env": map[string]string{"GREETING": "hi", "PATH_SET": "yes"}}, "hi-yes"},
		{"provider env inherited", map[string]any{"executable": "sh", "args": []string{"-c", `test -n "$PATH" && echo ok`}}, "ok\n"},
		{"absolute path", map[string]any{"executable": "/bin/sh", "args": []string{"-c", "echo abs"}}, "abs\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := h.Create("local.exec", tt.inputs)
			if got := sdktest.Outputs(t, s)["stdout"]; got != tt.stdout {
				t.Fatalf("stdout = %q, want %q", got, tt.stdout)
			}
		})
	}
}

func TestExecStderrIsLogged(t *testing.T) {
	h := newHarness(t)
	s, ev := h.Create("local.exec", map[string]any{"executable": "sh", "args": []string{"-c", "echo one >&2; echo out; printf two >&2"}})
	if got := sdktest.Outputs(t, s)["stdout"]; got != "out\n" {
		t.Errorf("stdout = %q, want only stdout", got)
	}
	if strings.Join(ev.Logs, "|") != "one|two" {
		t.Errorf("logs = %q, want the stderr lines one, two", ev.Logs)
	}
}

func TestExecFailure(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		inputs  map[string]any
		want    []string
		notWant []string
	}{
		{
			name:    "non-zero exit shows code and stderr tail",
			inputs:  map[string]any{"executable": "sh", "args": []string{"-c", "for i in $(seq 1 30); do echo line$i >&2; done; exit 3"}},
			want:    []string{"run sh", "exit status 3", "line11", "line30"},
			notWant: []string{"line10"},
		},
		{
			name:   "missing program",
			inputs: map[string]any{"executable": filepath.Join(t.TempDir(), "no-such-program")},
			want:   []string{"run ", "no-such-program"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: "local.exec", Name: "test", Inputs: resource.Values{JSON: h.JSON(tt.inputs)}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Diagnostics.HasError() {
				t.Fatal("no error")
			}
			msg := r.Diagnostics.Err().Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(msg, w) {
					t.Errorf("error %q contains %q", msg, w)
				}
			}
		})
	}
}

func TestExecTimeoutKillsCommand(t *testing.T) {
	h := newHarness(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	in := map[string]any{
		"executable": "sh",
		"args":       []string{"-c", `echo $$ > "$1"; exec sleep 30`, "sh", pidFile},
		"timeout":    1,
	}
	start := time.Now()
	r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: "local.exec", Name: "test", Inputs: resource.Values{JSON: h.JSON(in)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("create took %v; the timeout did not stop it", elapsed)
	}
	if !r.Diagnostics.HasError() || !strings.Contains(r.Diagnostics.Err().Error(), "timed out after 1 s") {
		t.Fatalf("diagnostics %v; want a timeout error", r.Diagnostics)
	}
	pid := waitForPid(t, pidFile)
	if !processGone(pid) {
		t.Fatalf("sleep (pid %d) still runs after the timeout", pid)
	}
}

func TestExecCancelKillsProcessGroup(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	shPid, sleepPid := filepath.Join(dir, "sh.pid"), filepath.Join(dir, "sleep.pid")
	// The shell starts a child in the background and waits: cancelling must
	// kill both, not only the shell.
	in := map[string]any{
		"executable": "sh",
		"args":       []string{"-c", `echo $$ > "$1"; sleep 30 & echo $! > "$2"; wait`, "sh", shPid, sleepPid},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.Provider.Create(ctx, resource.CreateRequest{Type: "local.exec", Name: "test", Inputs: resource.Values{JSON: h.JSON(in)}}, nil)
		done <- err
	}()
	pids := []int{waitForPid(t, shPid), waitForPid(t, sleepPid)}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("cancelled create returned no error")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("cancelled create did not return")
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d still runs after cancellation", pid)
		}
	}
}

func TestExecLifecycle(t *testing.T) {
	h := newHarness(t)
	marker := filepath.Join(t.TempDir(), "destroyed")
	destroy := map[string]any{"executable": "sh", "args": []string{"-c", `printf '%s' "$WHO" > "$1"`, "sh", marker}}
	in := map[string]any{"executable": "echo", "args": []string{"v1"}, "env": map[string]string{"WHO": "me"}, "destroy": destroy}
	s, _ := h.Create("local.exec", in)

	r := h.Read("local.exec", s)
	if !r.Exists || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
		t.Fatalf("Read = exists %v, outputs %s; want the recorded outputs %s", r.Exists, r.Outputs.JSON, s.Outputs.JSON)
	}
	if r := h.Read("local.exec", &resource.State{Inputs: s.Inputs}); r.Exists {
		t.Fatal("Read of an interrupted create says it exists")
	}

	p := h.Plan("local.exec", s, in)
	if p.Action != resource.ActionNoop || plannedOutputs(t, p)["stdout"] != "v1\n" {
		t.Fatalf("plan unchanged = %v with %s; want no-op keeping stdout", p.Action, p.PlannedOutputs)
	}
	in2 := map[string]any{"executable": "echo", "args": []string{"v2"}, "env": map[string]string{"WHO": "me"}, "destroy": destroy}
	p = h.Plan("local.exec", s, in2)
	if p.Action != resource.ActionUpdate || len(p.RequiresReplace) != 0 || !contains(p.UnknownOutputs, "stdout") {
		t.Fatalf("plan changed = %v (replace %v, unknown %v); want update with stdout unknown", p.Action, p.RequiresReplace, p.UnknownOutputs)
	}
	in3 := map[string]any{"executable": "printf", "args": []string{"v3"}, "env": map[string]string{"WHO": "me"}, "destroy": destroy}
	if p := h.Plan("local.exec", s, in3); p.Action != resource.ActionUpdate {
		t.Fatalf("plan with a new executable = %v, want update", p.Action)
	}
	s2, _ := h.Update("local.exec", s, in2)
	if got := sdktest.Outputs(t, s2)["stdout"]; got != "v2\n" {
		t.Fatalf("stdout after update = %q", got)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("destroy command ran before delete")
	}

	h.Delete("local.exec", s2)
	if got := readFile(t, marker); got != "me" {
		t.Fatalf("destroy command wrote %q, want %q (it runs with the env)", got, "me")
	}
}

func TestExecDeleteWithoutDestroy(t *testing.T) {
	h := newHarness(t)
	s, _ := h.Create("local.exec", map[string]any{"executable": "true"})
	if ev := h.Delete("local.exec", s); len(ev.Logs) != 0 {
		t.Errorf("delete without destroy logged %q", ev.Logs)
	}
}

func TestExecDestroyFailure(t *testing.T) {
	h := newHarness(t)
	s, _ := h.Create("local.exec", map[string]any{"executable": "true", "destroy": map[string]any{"executable": "false"}})
	r, err := h.Provider.Delete(context.Background(), resource.DeleteRequest{Type: "local.exec", Name: "test", Prior: *s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Diagnostics.HasError() || !r.HasState {
		t.Fatalf("failed destroy: diagnostics %v, keeps state %v; want an error and the state kept", r.Diagnostics, r.HasState)
	}
}

func TestExecValidate(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		inputs  map[string]any
		unknown []resource.Path
		path    string // "" means no error
		want    string
	}{
		{"valid", map[string]any{"executable": "echo", "args": []string{"a"}, "stdin": "x", "env": map[string]string{"A": "b"}, "timeout": 2.5, "destroy": map[string]any{"executable": "rm"}}, nil, "", ""},
		{"missing executable", map[string]any{"args": []string{"a"}}, nil, "executable", "missing required input"},
		{"empty executable", map[string]any{"executable": ""}, nil, "executable", "empty executable"},
		{"unknown input", map[string]any{"executable": "echo", "cwd": "/"}, nil, "cwd", "unknown input"},
		{"args not strings", map[string]any{"executable": "echo", "args": []any{"a", 1}}, nil, "args[1]", "wrong type"},
		{"args a string", map[string]any{"executable": "echo", "args": "a b"}, nil, "args", "wrong type"},
		{"env value not a string", map[string]any{"executable": "echo", "env": map[string]any{"N": 1}}, nil, "env.N", "wrong type"},
		{"env name with =", map[string]any{"executable": "echo", "env": map[string]any{"A=B": "c"}}, nil, `env."A=B"`, "invalid environment variable name"},
		{"timeout a string", map[string]any{"executable": "echo", "timeout": "10"}, nil, "timeout", "wrong type"},
		{"negative timeout", map[string]any{"executable": "echo", "timeout": -1}, nil, "timeout", "invalid timeout"},
		{"destroy without executable", map[string]any{"executable": "echo", "destroy": map[string]any{"args": []string{}}}, nil, "destroy.executable", "missing required input"},
		{"destroy unknown input", map[string]any{"executable": "echo", "destroy": map[string]any{"executable": "rm", "env": map[string]any{}}}, nil, "destroy.env", "unknown input"},
		{"unknown executable is not judged", map[string]any{}, []resource.Path{resource.AttrPath("executable")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := validate(t, h, "local.exec", tt.inputs, tt.unknown...)
			if tt.path == "" {
				if diags.HasError() {
					t.Fatalf("unexpected diagnostics: %v", diags.Err())
				}
				return
			}
			if !hasErrorAt(diags, tt.path, tt.want) {
				t.Fatalf("diagnostics %v; want an error at %q containing %q", diags, tt.path, tt.want)
			}
		})
	}
}

// TestExecDirectory: the command runs in the provider's working directory
// (the engine runs providers in the deployment's directory), which is
// recorded: the destroy command runs there whatever directory a later run
// starts in, and a plan from another directory runs the command again
// there.
func TestExecDirectory(t *testing.T) {
	deployment, elsewhere := t.TempDir(), t.TempDir()
	t.Chdir(deployment)
	h := newHarness(t)
	in := map[string]any{
		"executable": "sh", "args": []string{"-c", "mkdir -p out && pwd > out/made && pwd"},
		"destroy": map[string]any{"executable": "rm", "args": []string{"out/made"}},
	}
	if p := h.Plan("local.exec", nil, in); plannedOutputs(t, p)["dir"] != deployment || contains(p.UnknownOutputs, "dir") {
		t.Errorf("planned outputs %s (unknown %v), want dir %s known", p.PlannedOutputs, p.UnknownOutputs, deployment)
	}
	s, _ := h.Create("local.exec", in)
	out := sdktest.Outputs(t, s)
	if out["dir"] != deployment || out["stdout"] != deployment+"\n" {
		t.Fatalf("outputs = %v, want the command run in %s", out, deployment)
	}
	if p := h.Plan("local.exec", s, in); p.Action != resource.ActionNoop {
		t.Errorf("plan in the same directory = %v, want no-op", p.Action)
	}

	t.Chdir(elsewhere)
	p := h.Plan("local.exec", s, in)
	if p.Action != resource.ActionUpdate || plannedOutputs(t, p)["dir"] != elsewhere || len(p.Diagnostics) == 0 {
		t.Errorf("plan from another directory = %v, planned %s, diagnostics %v; want an update in %s with a warning", p.Action, p.PlannedOutputs, p.Diagnostics, elsewhere)
	}
	h.Delete("local.exec", s)
	if _, err := os.Stat(filepath.Join(deployment, "out", "made")); !os.IsNotExist(err) {
		t.Errorf("the destroy command did not run in %s: %v", deployment, err)
	}

	// The recorded directory is gone: the destroy command does not run
	// anywhere else.
	gone := &resource.State{Inputs: s.Inputs, Outputs: resource.Values{JSON: h.JSON(map[string]any{"stdout": "", "dir": filepath.Join(deployment, "gone")})}}
	r, err := h.Provider.Delete(context.Background(), resource.DeleteRequest{Type: "local.exec", Name: "test", Prior: *gone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Diagnostics.HasError() || !r.HasState || !strings.Contains(r.Diagnostics.Err().Error(), "gone") {
		t.Errorf("destroy in a directory that is gone: diagnostics %v, keeps state %v; want an error naming it and the state kept", r.Diagnostics, r.HasState)
	}
}
