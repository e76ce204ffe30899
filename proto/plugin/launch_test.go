package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/proto/plugin"
)

// hangGuard bounds a launch that must end by itself; it is a guard
// against hangs, not a timing assertion.
const hangGuard = 2 * time.Minute

// goneWithin is how long a killed process gets to disappear.
const goneWithin = 30 * time.Second

// scriptProvider writes an executable shell script that runs body
// instead of speaking the plugin handshake. In body, $PIDS is a
// directory for pid files.
func scriptProvider(t *testing.T, body string) (path, pids string) {
	t.Helper()
	dir := t.TempDir()
	pids = filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "landscaper-provider-script")
	script := fmt.Sprintf("#!/bin/sh\nPIDS=%s\necho $$ > \"$PIDS/sh\"\n%s\n", pids, body)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, pids
}

// readPid waits until the script wrote the pid file name and returns the
// pid in it.
func readPid(t *testing.T, pids, name string) int {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		data, err := os.ReadFile(filepath.Join(pids, name))
		if err == nil && bytes.HasSuffix(data, []byte("\n")) {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatalf("pid file %s: %v", name, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script wrote no pid file %s within %s", name, hangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running reports whether pid is a live process whose command is comm: a
// zombie has ended (PID 1 here may never reap it), and another command
// means the pid was reused.
func running(pid int, comm string) bool {
	comm = comm[:min(len(comm), 15)] // the kernel keeps 15 bytes of it
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 >= len(stat) {
		return false
	}
	state := stat[end+2]
	return string(stat[open+1:end]) == comm && state != 'Z' && state != 'X'
}

// mustBeGone fails the test if the process pid (running comm) is still
// alive after goneWithin, and kills it then.
func mustBeGone(t *testing.T, what string, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(goneWithin)
	for running(pid, comm) {
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d, %s) still runs %s after the launch ended", what, pid, comm, goneWithin)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// launch runs plugin.Launch in the background and returns its error, or
// fails the test if it does not return within hangGuard.
func launch(t *testing.T, ctx context.Context, path string, startTimeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := plugin.Launch(ctx, path, plugin.LaunchOptions{StartTimeout: startTimeout})
		if c != nil {
			c.Kill()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("plugin.Launch of %s did not return within %s", path, hangGuard)
		return nil
	}
}

// TestLaunchKillsProcessGroup: a provider that does not speak the
// handshake and leaves a child holding its stdout and stderr open (a
// sleep, a flood of output on either) makes Launch fail with go-plugin's
// error once the handshake limit passes or the first line is wrong, and
// neither the provider nor its child is left running. Before providers
// ran in a process group of their own, Launch never returned: go-plugin
// waits for the end of the provider's output, which the child held open.
func TestLaunchKillsProcessGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		// child is the command of the background child.
		child string
		want  string
	}{
		{"child sleeps holding the pipes", `sleep 1000 & echo $! > "$PIDS/child"; wait`, "sleep", "timeout while waiting for plugin to start"},
		{"provider exits, its child holds the pipes", `sleep 1000 & echo $! > "$PIDS/child"; exit 0`, "sleep", "start provider"},
		{"child floods stdout", `yes & echo $! > "$PIDS/child"; wait`, "yes", "Unrecognized remote plugin message: y"},
		{"child floods stderr", `yes >&2 & echo $! > "$PIDS/child"; wait`, "yes", "timeout while waiting for plugin to start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, pids := scriptProvider(t, tc.body)
			err := launch(t, context.Background(), path, 2*time.Second)
			if err == nil {
				t.Fatal("Launch of a script that never speaks the handshake succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Launch's error does not name the provider and say %q: %v", tc.want, err)
			}
			mustBeGone(t, "the provider's child", readPid(t, pids, "child"), tc.child)
			mustBeGone(t, "the provider", readPid(t, pids, "sh"), filepath.Base(path))
		})
	}
}

// TestLaunchCancelledDuringHandshake: cancelling Launch's context while
// the provider has not finished its handshake (Ctrl-C) ends Launch with
// the context's error, and kills the provider and its child.
func TestLaunchCancelledDuringHandshake(t *testing.T) {
	t.Parallel()
	path, pids := scriptProvider(t, `sleep 1000 & echo $! > "$PIDS/child"; wait`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the provider's child runs: in the handshake. The
		// pid file is complete only with its newline: cancelling as soon
		// as the shell created it killed the shell before it wrote the
		// pid (seen under load).
		for {
			if data, err := os.ReadFile(filepath.Join(pids, "child")); err == nil && bytes.HasSuffix(data, []byte("\n")) {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := launch(t, ctx, path, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Launch cancelled during the handshake: want context.Canceled, got %v", err)
	}
	mustBeGone(t, "the provider's child", readPid(t, pids, "child"), "sleep")
	mustBeGone(t, "the provider", readPid(t, pids, "sh"), filepath.Base(path))
}
