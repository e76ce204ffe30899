// Package e2e runs the real landscaper binary, with the real local provider
// and the real nix, against deployments in temporary directories, and checks
// what ends up on disk, in the state and in the JSON event stream.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// commandTimeout bounds one landscaper run; a hang fails the test instead
// of the whole package timing out.
const commandTimeout = 3 * time.Minute

// run runs landscaper in dir with stdin not a terminal (/dev/null) and
// returns what it printed and its exit code.
func run(t *testing.T, dir string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	bin := filepath.Join(testbin.Dir(t), "landscaper")
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = testEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("landscaper %s timed out after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), commandTimeout, out.String(), errb.String())
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run landscaper %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// testEnv is the environment of the test process without the variables
// that change landscaper's behaviour.
func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LANDSCAPER_") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		env = append(env, kv)
	}
	// This machine (and CI's) has no network: without substituters a
	// build does not wait for a binary cache to time out.
	return append(env, "NO_COLOR=1", "NIX_CONFIG=substituters =")
}

// mustRun runs landscaper and fails the test unless it exits with want.
func mustRun(t *testing.T, dir string, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := run(t, dir, args...)
	if code != want {
		t.Fatalf("landscaper %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// event is one line of --json output: an event, a plan or a summary.
type event struct {
	Kind    string `json:"kind"`
	Member  string `json:"member"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Message string `json:"message"`

	// kind "plan"
	Changes []planChange `json:"changes"`
	Add     int          `json:"add"`
	Change  int          `json:"change"`
	Destroy int          `json:"destroy"`
	Drift   []string     `json:"drift"`

	// kind "summary"
	Created  int      `json:"created"`
	Updated  int      `json:"updated"`
	Replaced int      `json:"replaced"`
	Deleted  int      `json:"deleted"`
	Failed   []string `json:"failed"`
	Skipped  []string `json:"skipped"`
}

type planChange struct {
	Member   string   `json:"member"`
	Type     string   `json:"type"`
	Action   string   `json:"action"`
	Changed  []string `json:"changed"`
	Deferred bool     `json:"deferred"`
}

// events parses --json output: every line must be one JSON object.
func events(t *testing.T, stdout string) []event {
	t.Helper()
	var evs []event
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l == "" {
			continue
		}
		var ev event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("--json output line is not JSON: %v\n%s\nfull output:\n%s", err, l, stdout)
		}
		if ev.Kind == "" {
			t.Fatalf("--json output line without kind: %s", l)
		}
		evs = append(evs, ev)
	}
	return evs
}

// index returns the position of the first event of kind about member, or -1.
func index(evs []event, kind, member string) int {
	for i, ev := range evs {
		if ev.Kind == kind && ev.Member == member {
			return i
		}
	}
	return -1
}

// membersWith returns the sorted members that have an event of kind.
func membersWith(evs []event, kind string) []string {
	seen := map[string]bool{}
	var out []string
	for _, ev := range evs {
		if ev.Kind == kind && ev.Member != "" && !seen[ev.Member] {
			seen[ev.Member] = true
			out = append(out, ev.Member)
		}
	}
	sort.Strings(out)
	return out
}

// planOf returns the first plan in the output.
func planOf(t *testing.T, evs []event) event {
	t.Helper()
	for _, ev := range evs {
		if ev.Kind == "plan" {
			return ev
		}
	}
	t.Fatalf("no plan in the --json output")
	return event{}
}

// actions maps each member of a plan to its action.
func actions(p event) map[string]string {
	out := map[string]string{}
	for _, c := range p.Changes {
		out[c.Member] = c.Action
	}
	return out
}

// summaryOf returns the summary line of an apply, if there is one.
func summaryOf(evs []event) (event, bool) {
	for _, ev := range evs {
		if ev.Kind == "summary" {
			return ev, true
		}
	}
	return event{}, false
}

// requireOrder fails unless the first (kindA, memberA) event comes before
// the first (kindB, memberB) event, both present.
func requireOrder(t *testing.T, evs []event, kindA, memberA, kindB, memberB string) {
	t.Helper()
	a, b := index(evs, kindA, memberA), index(evs, kindB, memberB)
	if a < 0 || b < 0 || a >= b {
		t.Errorf("want %s %q (event #%d) before %s %q (event #%d)", kindA, memberA, a, kindB, memberB, b)
	}
}

func sameStrings(a, b []string) bool {
	a, b = append([]string{}, a...), append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// writeFile writes a file under dir, creating parent directories.
func writeFile(t *testing.T, dir, name, contents string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile returns a file's contents, failing the test if it is missing.
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// wantFile checks a file's contents.
func wantFile(t *testing.T, dir, name, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Errorf("%s: %v (want contents %q)", name, err, want)
		return
	}
	if string(b) != want {
		t.Errorf("%s holds %q, want %q", name, b, want)
	}
}

func exists(dir, name string) bool {
	_, err := os.Lstat(filepath.Join(dir, name))
	return err == nil
}

func wantNoFile(t *testing.T, dir, name string) {
	t.Helper()
	if exists(dir, name) {
		t.Errorf("%s exists; it should not", name)
	}
}

// statePath is where the state of a deployment in dir lives.
func statePath(dir string) string { return filepath.Join(dir, ".landscaper", "state.json") }

// stateBytes returns the state file's bytes, or nil when there is none.
func stateBytes(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stateMembers lists the members `state list` prints.
func stateMembers(t *testing.T, dir string) []string {
	t.Helper()
	out, _ := mustRun(t, dir, 0, "state", "list", "--json")
	var list []struct {
		Member string `json:"member"`
		Type   string `json:"type"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("state list --json: %v\n%s", err, out)
	}
	names := make([]string, 0, len(list))
	for _, e := range list {
		names = append(names, e.Member)
	}
	sort.Strings(names)
	return names
}

// snapshot records every regular file under dir/sub (path relative to dir)
// with its contents and file info, to tell later which were rewritten.
type fileSnap struct {
	contents string
	info     os.FileInfo
}

func snapshot(t *testing.T, dir, sub string) map[string]fileSnap {
	t.Helper()
	out := map[string]fileSnap{}
	root := filepath.Join(dir, sub)
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fileSnap{contents: string(b), info: info}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// untouched reports whether a file is the very file of the snapshot: same
// inode (local.file writes by rename), same mtime, same contents.
func untouched(t *testing.T, dir string, before fileSnap, name string) bool {
	t.Helper()
	info, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return false
	}
	return os.SameFile(before.info, info) && before.info.ModTime().Equal(info.ModTime()) && string(b) == before.contents
}
