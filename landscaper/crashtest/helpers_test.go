// Package crashtest checks that Landscaper survives crashes: the engine
// killed at random moments, providers that panic, exit or hang, Ctrl-C, and
// plugin processes left behind. The tests run the real landscaper binary
// against real provider binaries (local, and the testkit provider that
// misbehaves on request).
package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// testkitPkg is the test provider's main package, built beside landscaper.
const testkitPkg = "./landscaper/internal/testprovider/cmd/landscaper-provider-testkit"

// runTimeout bounds any one landscaper run, so a hang fails the test
// instead of the whole test binary.
const runTimeout = 4 * time.Minute

// pluginGoneWithin is how long plugin processes get to disappear after the
// engine is gone: the kernel's parent-death signal is immediate, the
// plugin's own polling of its parent takes about a second.
const pluginGoneWithin = 6 * time.Second

// bins returns the directory holding landscaper and the providers,
// testkit included.
func bins(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Fatal("nix-instantiate is not installed (scripts/install-deps.sh installs nix-bin)")
	}
	return testbin.Dir(t, testkitPkg)
}

// env is the environment of a landscaper run: the test's own, without
// settings that would change where state lives or what is printed.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LANDSCAPER_") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "NO_COLOR=1")
}

// result is the outcome of a finished landscaper run.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) output() string { return r.stdout + r.stderr }

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", r.code, r.stdout, r.stderr)
}

// landscaper runs the landscaper binary in dir and waits for it.
func landscaper(t *testing.T, bin, dir string, args ...string) result {
	t.Helper()
	return landscaperWithEnv(t, bin, dir, nil, args...)
}

// landscaperWithEnv is landscaper with extra environment variables
// (KEY=value).
func landscaperWithEnv(t *testing.T, bin, dir string, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = append(env(), extraEnv...)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("landscaper %s did not finish within %s\n%s", strings.Join(args, " "), runTimeout, res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run landscaper %s: %v", strings.Join(args, " "), err)
	}
	checkRaces(t, "landscaper "+strings.Join(args, " "), res)
	return res
}

// checkRaces fails the test if the race detector reported a data race in
// the engine (the binaries are built with -race when the tests are).
func checkRaces(t *testing.T, what string, res result) {
	t.Helper()
	if strings.Contains(res.stderr, "WARNING: DATA RACE") {
		t.Errorf("%s: the race detector found a data race in the engine (exit %d):\n%s", what, res.code, res.stderr)
	}
}

// mustSucceed runs landscaper and fails the test unless it exits 0.
func mustSucceed(t *testing.T, bin, dir string, args ...string) result {
	t.Helper()
	r := landscaper(t, bin, dir, args...)
	if r.code != 0 {
		t.Fatalf("landscaper %s: want exit 0, got %s", strings.Join(args, " "), r)
	}
	return r
}

// event is one line of `--json` output: an engine event, the plan or the
// summary.
type event struct {
	Kind    string `json:"kind"`
	Member  string `json:"member"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Message string `json:"message"`
	// The plan's changes.
	Changes []struct {
		Member string `json:"member"`
		Action string `json:"action"`
	} `json:"changes"`
	// The summary's figures.
	Failed          []string `json:"failed"`
	PluginProcesses int      `json:"plugin_processes"`
	raw             string
}

// running is a landscaper run in progress whose --json output is read as it
// comes.
type running struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	// kick is signalled whenever an event is added to all.
	kick chan struct{}
	// cursor is the index in all of the next event next returns.
	cursor int
	// done is closed when the process has exited and its output is read.
	done chan struct{}
	res  result

	mu  sync.Mutex
	all []event
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start starts landscaper in dir; its stdout is read as JSON lines.
func start(t *testing.T, bin, dir string, args ...string) *running {
	t.Helper()
	return startWithEnv(t, bin, dir, nil, args...)
}

// startWithEnv is start with extra environment variables (KEY=value).
func startWithEnv(t *testing.T, bin, dir string, extraEnv []string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "landscaper"), args...)
	cmd.Dir = dir
	cmd.Env = append(env(), extraEnv...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{t: t, cmd: cmd, stderr: &syncBuffer{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start landscaper: %v", err)
	}
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			var ev event
			if json.Unmarshal([]byte(line), &ev) == nil {
				ev.raw = line
				r.mu.Lock()
				r.all = append(r.all, ev)
				r.mu.Unlock()
				select {
				case r.kick <- struct{}{}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		err := cmd.Wait()
		r.res = result{stdout: out.String(), stderr: r.stderr.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.res.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				r.res.code = 128 + int(ws.Signal())
			}
		} else if err != nil {
			r.res.code = -1
			r.res.stderr += "\nwait: " + err.Error()
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *running) pid() int { return r.cmd.Process.Pid }

// exited reports whether the process has exited.
func (r *running) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// next returns the next event, or false once the run has ended or the
// deadline passed.
func (r *running) next(deadline time.Time) (event, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		r.mu.Lock()
		if r.cursor < len(r.all) {
			ev := r.all[r.cursor]
			r.cursor++
			r.mu.Unlock()
			return ev, true
		}
		r.mu.Unlock()
		select {
		case <-r.kick:
		case <-r.done:
			r.mu.Lock()
			more := r.cursor < len(r.all)
			r.mu.Unlock()
			if !more {
				return event{}, false
			}
		case <-timer.C:
			return event{}, false
		}
	}
}

// waitFor reads events until pred is true of one. It fails the test if the
// run ends or the timeout passes first.
func (r *running) waitFor(what string, timeout time.Duration, pred func(event) bool) event {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev, ok := r.next(deadline)
		if !ok {
			if r.exited() {
				r.t.Fatalf("landscaper ended before %s:\n%s", what, r.res)
			}
			r.t.Fatalf("no %s within %s; events so far:\n%s", what, timeout, r.transcript())
		}
		if pred(ev) {
			return ev
		}
	}
}

// wait waits for the process to exit, failing the test after timeout.
func (r *running) wait(timeout time.Duration) result {
	r.t.Helper()
	select {
	case <-r.done:
		checkRaces(r.t, "landscaper "+strings.Join(r.cmd.Args[1:], " "), r.res)
		return r.res
	case <-time.After(timeout):
		r.t.Fatalf("landscaper (pid %d) still runs %s later; stderr so far:\n%s", r.pid(), timeout, r.stderr.String())
	}
	return result{}
}

// signal sends sig to the process.
func (r *running) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Fatalf("signal %v: %v", sig, err)
	}
}

// seen returns the events read so far.
func (r *running) seen() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.all...)
}

func (r *running) transcript() string {
	var b strings.Builder
	for _, ev := range r.seen() {
		b.WriteString(ev.raw + "\n")
	}
	b.WriteString("--- stderr ---\n" + r.stderr.String())
	return b.String()
}

// jsonLines parses the --json output of a finished run.
func jsonLines(stdout string) []event {
	var out []event
	for _, line := range strings.Split(stdout, "\n") {
		var ev event
		if json.Unmarshal([]byte(line), &ev) == nil {
			ev.raw = line
			out = append(out, ev)
		}
	}
	return out
}

// summaryOf returns the summary among a run's events.
func summaryOf(evs []event) event {
	for _, ev := range evs {
		if ev.Kind == "summary" {
			return ev
		}
	}
	return event{}
}

// membersWith returns the members that have an event of the given kind.
func membersWith(evs []event, kind string) map[string]bool {
	out := map[string]bool{}
	for _, ev := range evs {
		if ev.Kind == kind && ev.Member != "" {
			out[ev.Member] = true
		}
	}
	return out
}

// stateDoc is the state file as the tests look at it.
type stateDoc struct {
	Version   int                        `json:"version"`
	Lineage   string                     `json:"lineage"`
	Serial    uint64                     `json:"serial"`
	Resources map[string]stateResource   `json:"resources"`
	Pending   map[string]json.RawMessage `json:"pending"`
}

type stateResource struct {
	Type         string            `json:"type"`
	Provider     string            `json:"provider"`
	Inputs       map[string]any    `json:"inputs"`
	Outputs      map[string]string `json:"outputs"`
	Dependencies []string          `json:"dependencies"`
	Tainted      bool              `json:"tainted"`
}

func statePath(dir string) string { return filepath.Join(dir, ".landscaper", "state.json") }

// readState parses the state file of dir; ok is false if there is none.
func readState(t *testing.T, dir string) (st stateDoc, ok bool) {
	t.Helper()
	data, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return st, false
	}
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file %s does not parse as a state document: %v\n%s", statePath(dir), err, data)
	}
	if st.Version != 1 || st.Lineage == "" {
		t.Fatalf("state file %s has version %d and lineage %q\n%s", statePath(dir), st.Version, st.Lineage, data)
	}
	return st, true
}

func mustReadState(t *testing.T, dir string) stateDoc {
	t.Helper()
	st, ok := readState(t, dir)
	if !ok {
		t.Fatalf("no state file at %s", statePath(dir))
	}
	return st
}

// stateList runs `landscaper state list` and returns the members it names
// as recorded (not pending).
func stateList(t *testing.T, bin, dir string) map[string]string {
	t.Helper()
	r := mustSucceed(t, bin, dir, "state", "list")
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	return out
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, path, contents string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
}

// nixString quotes s as a Nix string.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// listFiles returns every file under root (paths relative to it).
func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// proc is a process as /proc shows it.
type proc struct {
	pid, ppid int
	state     byte
	exe       string
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s, state %c, parent %d)", p.pid, p.exe, p.state, p.ppid)
}

// processes lists every process whose executable is in dir.
func processes(dir string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if ok && filepath.Dir(p.exe) == dir {
			out = append(out, p)
		}
	}
	return out
}

func readProc(pid int) (proc, bool) {
	base := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return proc{}, false
	}
	// The state and parent follow the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	p := proc{pid: pid, ppid: ppid, state: f[0][0]}
	if exe, err := os.Readlink(base + "/exe"); err == nil {
		p.exe = strings.TrimSuffix(exe, " (deleted)")
	} else if cmdline, err := os.ReadFile(base + "/cmdline"); err == nil && len(cmdline) > 0 {
		p.exe, _, _ = strings.Cut(string(cmdline), "\x00")
	}
	return p, true
}

func isPlugin(p proc) bool {
	return strings.HasPrefix(filepath.Base(p.exe), "landscaper-provider-")
}

// alive reports whether a process still runs: a zombie has ended (PID 1
// here may never reap it).
func alive(p proc) bool { return p.state != 'Z' && p.state != 'X' }

// strayPlugins lists the live plugin processes built in dir whose parent is
// not a live landscaper engine built in dir: plugins left behind by an
// engine that is gone.
func strayPlugins(dir string) []proc {
	ps := processes(dir)
	engines := map[int]bool{}
	for _, p := range ps {
		if filepath.Base(p.exe) == "landscaper" && alive(p) {
			engines[p.pid] = true
		}
	}
	var out []proc
	for _, p := range ps {
		if isPlugin(p) && alive(p) && !engines[p.ppid] {
			out = append(out, p)
		}
	}
	return out
}

// pluginsOf lists the live plugin processes whose parent is pid.
func pluginsOf(dir string, pid int) []proc {
	var out []proc
	for _, p := range processes(dir) {
		if isPlugin(p) && alive(p) && p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// noStrayPlugins fails the test if plugin processes whose engine is gone
// are still alive after pluginGoneWithin. It returns how long they took.
func noStrayPlugins(t *testing.T, dir string, what string) time.Duration {
	t.Helper()
	return noStrayPluginsWithin(t, dir, what, pluginGoneWithin)
}

func noStrayPluginsWithin(t *testing.T, dir string, what string, within time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(within)
	for {
		strays := strayPlugins(dir)
		if len(strays) == 0 {
			return time.Since(begin)
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: plugin processes still alive %s after their engine is gone: %v", what, within, strays)
			for _, p := range strays {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
			return time.Since(begin)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
