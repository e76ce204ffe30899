package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// mvState is a state in which b and grp.c depend on a, and p has an
// interrupted update.
func mvState(t *testing.T) string {
	rec := func(deps ...string) *state.Resource {
		return &state.Resource{Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{"name":"x"}`), Outputs: json.RawMessage(`{"sha256":"s"}`), Private: []byte("private"), Dependencies: deps}
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return writeState(t, map[string]*state.Resource{
		"a": rec(), "b": rec("a", "z"), "grp.c": rec("a"), "p": rec(), "z": rec(),
	}, map[string]*state.Pending{
		"p":    {Operation: state.OpUpdate, Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`), Since: since},
		"half": {Operation: state.OpCreate, Type: "local.file", Provider: "local", Inputs: json.RawMessage(`{}`), Since: since},
	})
}

func readStateFile(t *testing.T, path string) *state.State {
	t.Helper()
	st, err := state.NewFile(path).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStateMv(t *testing.T) {
	path := mvState(t)
	before := readStateFile(t, path)
	stdout, stderr, code := runMain(t, "state", "mv", "--state", path, "a", "web.a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Moved a to web.a in the state", "The dependencies of b, grp.c now name web.a."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}
	after := readStateFile(t, path)
	if _, ok := after.Resources["a"]; ok {
		t.Error("a is still recorded")
	}
	moved, ok := after.Resources["web.a"]
	if !ok {
		t.Fatal("web.a is not recorded")
	}
	was := before.Resources["a"]
	if moved.Type != was.Type || string(moved.Outputs) != string(was.Outputs) || !bytes.Equal(moved.Private, was.Private) {
		t.Errorf("the record changed: %+v, was %+v", moved, was)
	}
	for name, want := range map[string][]string{"b": {"web.a", "z"}, "grp.c": {"web.a"}, "z": nil} {
		if got := after.Resources[name].Dependencies; !slices.Equal(got, want) {
			t.Errorf("%s depends on %v, want %v", name, got, want)
		}
	}
	if after.Lineage != before.Lineage || after.Serial != before.Serial+1 || len(after.Pending) != 2 {
		t.Errorf("lineage %s serial %d pending %d; was %s %d %d", after.Lineage, after.Serial, len(after.Pending), before.Lineage, before.Serial, len(before.Pending))
	}
}

// TestStateMvRefusals: each refusal names the problem and changes nothing.
func TestStateMvRefusals(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     string
	}{
		{"old missing", "nope", "x", `no member "nope" in state`},
		{"new exists", "a", "b", `member "b" exists in state`},
		{"new pending", "a", "half", `member "half" has an interrupted create`},
		{"old pending", "p", "q", `member "p" has an interrupted update; run plan or apply to settle it first`},
		{"old only pending", "half", "q", `member "half" has an interrupted create`},
		{"same name", "a", "a", "are the same name"},
		{"empty name", "a", "", `"" is not a member name`},
		{"empty part", "a", "web..a", `"web..a" is not a member name: it holds an empty name`},
		{"trailing dot", "a", "web.", `"web." is not a member name`},
		{"hash", "a", "a#b", `"a#b" is not a member name: it holds '#'`},
		{"line break", "a", "a\nb", `"a\nb" is not a member name: it holds a line break`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := mvState(t)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runMain(t, "state", "mv", "--state", path, "--", tc.from, tc.to)
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "nothing moved") {
				t.Errorf("stderr does not say %q and nothing moved:\n%s", tc.want, stderr)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the state changed")
			}
		})
	}
}

// TestStateMvTakesTheLock: a state locked by another run is not changed;
// --lock-timeout waits for it.
func TestStateMvTakesTheLock(t *testing.T) {
	path := mvState(t)
	unlock, err := state.NewFile(path).Lock(context.Background(), state.LockInfo{PID: 1, Host: "elsewhere", Command: "landscaper apply"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runMain(t, "state", "mv", "--state", path, "a", "a2")
	if code != 1 || !strings.Contains(stderr, "lock state") || !strings.Contains(stderr, "landscaper apply") {
		t.Errorf("exit %d, stderr:\n%s\nwant a refusal naming the holder", code, stderr)
	}
	if _, ok := readStateFile(t, path).Resources["a"]; !ok {
		t.Fatal("a was moved although the state was locked")
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = unlock()
		close(released)
	}()
	if _, stderr, code := runMain(t, "state", "mv", "--state", path, "--lock-timeout", "20s", "a", "a2"); code != 0 {
		t.Errorf("with --lock-timeout: exit %d:\n%s", code, stderr)
	}
	<-released
	if _, ok := readStateFile(t, path).Resources["a2"]; !ok {
		t.Error("a2 is not recorded")
	}
}
