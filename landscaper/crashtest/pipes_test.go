package crashtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests here check that a provider executable that never speaks the
// plugin handshake and leaves a child holding its stdout or stderr open
// cannot hang landscaper: the run ends once the handshake limit passes
// (or at once if the first line is wrong), or at Ctrl-C, and the provider
// and its child are killed with their process group. Before, go-plugin
// waited for the end of the provider's output for good: `landscaper plan`
// never returned, ignored Ctrl-C, and left the child running.

// pipesProvider writes a provider executable, a shell script running
// body, and a deployment in dir that declares it as provider "pipes" and
// has one member of it. In body, $PIDS is a directory for pid files; the
// script writes its own pid to $PIDS/sh.
func pipesProvider(t *testing.T, dir, body string) (pids string) {
	t.Helper()
	pids = filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "landscaper-provider-pipes")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\nPIDS=%s\necho $$ > \"$PIDS/sh\"\n%s\n", pids, body))
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "landscaper.nix"), fmt.Sprintf(`{ members, providers, ... }: {
  providers.pipes.executable = %s;
  members.thing = { type = providers.pipes.thing; inputs = { }; };
}
`, nixString(script)))
	return pids
}

// pidIn returns the pid the script wrote to the file name in pids, or 0.
func pidIn(pids, name string) int {
	data, err := os.ReadFile(filepath.Join(pids, name))
	if err != nil || !bytes.HasSuffix(data, []byte("\n")) {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// commOf returns the command name of a live process (as ps shows it), or
// "" if pid is gone or a zombie (PID 1 here may never reap it).
func commOf(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 >= len(stat) || stat[end+2] == 'Z' || stat[end+2] == 'X' {
		return ""
	}
	return string(stat[open+1 : end])
}

// mustBeGone fails the test if the process the script recorded in the
// pid file name, running comm, is still alive pluginGoneWithin after
// landscaper exited, and kills it then.
func mustBeGone(t *testing.T, pids, name, comm string) {
	t.Helper()
	pid := pidIn(pids, name)
	if pid == 0 {
		t.Errorf("the provider script wrote no pid file %s: it never ran that far", name)
		return
	}
	comm = comm[:min(len(comm), 15)] // the kernel keeps 15 bytes of it
	deadline := time.Now().Add(pluginGoneWithin)
	for commOf(pid) == comm {
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d) still runs %s after landscaper exited", comm, pid, pluginGoneWithin)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProviderHoldingPipes: `landscaper plan` with a provider that starts
// a child holding its output open (a sleep, a flood on stdout or stderr)
// instead of speaking the handshake fails with an error that names the
// provider and says what went wrong, after the handshake limit at the
// latest (--call-timeout 3s), and neither the provider nor its child is
// left running.
func TestProviderHoldingPipes(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	tests := []struct {
		name, body, child, want string
	}{
		{"child sleeps holding the pipes", `sleep 1000 & echo $! > "$PIDS/child"; wait`, "sleep", "timeout while waiting for plugin to start"},
		{"child floods stdout", `yes & echo $! > "$PIDS/child"; wait`, "yes", "Unrecognized remote plugin message: y"},
		{"child floods stderr", `yes >&2 & echo $! > "$PIDS/child"; wait`, "yes", "timeout while waiting for plugin to start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pids := pipesProvider(t, dir, tc.body)
			res := landscaper(t, bin, dir, "plan", "--call-timeout", "3s")
			if res.code != 1 {
				t.Errorf("plan: want exit 1, got %s", res)
			}
			if m := missing(res.stderr, "provider pipes", "landscaper-provider-pipes", tc.want); len(m) > 0 {
				t.Errorf("plan's error does not say %q:\n%s", m, res)
			}
			mustBeGone(t, pids, "child", tc.child)
			mustBeGone(t, pids, "sh", "landscaper-provider-pipes")
		})
	}
}

// TestInterruptDuringHandshake: Ctrl-C while a provider that holds its
// output open through a child has not finished its handshake (the limit
// is 30 s) stops `landscaper plan` at once, and neither the provider nor
// its child is left running.
func TestInterruptDuringHandshake(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	pids := pipesProvider(t, dir, `sleep 1000 & echo $! > "$PIDS/child"; wait`)
	run := start(t, bin, dir, "plan")
	waitUntil(t, run, "the provider's child to run", func() bool { return pidIn(pids, "child") != 0 })
	run.signal(syscall.SIGINT)
	res := run.wait(exitWithin)
	if res.code == 0 {
		t.Errorf("interrupted plan: want a non-zero exit, got %s", res)
	}
	if m := missing(res.stderr, "provider pipes", "context canceled"); len(m) > 0 {
		t.Errorf("the interrupted plan's error does not say %q:\n%s", m, res)
	}
	mustBeGone(t, pids, "child", "sleep")
	mustBeGone(t, pids, "sh", "landscaper-provider-pipes")
}
