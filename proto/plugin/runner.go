package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/go-plugin/runner"
)

// pipeWaitDelay is how long a provider's stdout and stderr are still read
// after its process has ended (and the rest of its process group was
// killed): long enough to read its last words, short enough that
// something outside its group holding the pipes open cannot make the
// engine wait.
const pipeWaitDelay = 2 * time.Second

// groupRunner starts a provider as go-plugin's runner, but in a session
// (and so a process group) of its own, without a controlling terminal and
// with stdin from /dev/null, and kills the whole group, not only the
// provider's own process: a provider that is a script, or that started
// children, cannot leave processes behind that hold its stdout or stderr
// open. go-plugin reads both pipes to their end before it reaps the
// process, so such a child would make it wait for good; the runner closes
// the pipes pipeWaitDelay after the provider ended, whoever holds them.
//
// The group is killed when the provider's process ends (before it is
// reaped, so the group id cannot have been reused), when Kill is called
// (a timeout, an interrupt, the end of the run) and, by the kernel, when
// the engine dies (the provider's process only: parent-death signal).
type groupRunner struct {
	cmd    *exec.Cmd
	stdout *os.File
	stderr *os.File
	// exited is closed once the process is reaped; waitErr is then its
	// exit status.
	exited  chan struct{}
	waitErr error

	mu sync.Mutex
	// pid is the provider's process id once it started.
	pid int
	// killed is set once kill was called: a provider that starts after
	// that is killed at once.
	killed bool
	// ended is set, under mu, once the process has ended and its group
	// has been killed, just before it is reaped: from then on the group
	// id may be reused and must not be signalled.
	ended bool
}

var _ runner.Runner = (*groupRunner)(nil)

// newGroupRunner prepares path to be run; its environment (go-plugin's
// handshake variables) is set before go-plugin starts it.
func newGroupRunner(path string) *groupRunner {
	cmd := exec.Command(path)
	// Not go-plugin's os.Stdin: a provider has no business with the
	// engine's terminal.
	cmd.Stdin = nil
	// Setsid: a process group of its own, so it can be killed as a whole,
	// and no controlling terminal, so that nothing in it can be stopped
	// by reading from the terminal or get the terminal's Ctrl-C (the
	// engine decides what an interrupt stops). Pdeathsig: the kernel
	// kills the provider when the engine dies, even by SIGKILL; the
	// provider also watches its parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	return &groupRunner{cmd: cmd, exited: make(chan struct{})}
}

// Start starts the provider.
func (r *groupRunner) Start(context.Context) error {
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		_ = stdoutR.Close()
		_ = stdoutW.Close()
		return fmt.Errorf("stderr pipe: %w", err)
	}
	r.cmd.Stdout, r.cmd.Stderr = stdoutW, stderrW
	err = r.cmd.Start()
	// The provider has its own copies of the write ends now; ours would
	// keep the pipes from ever ending.
	_ = stdoutW.Close()
	_ = stderrW.Close()
	if err != nil {
		_ = stdoutR.Close()
		_ = stderrR.Close()
		return fmt.Errorf("start process: %w", err)
	}
	r.stdout, r.stderr = stdoutR, stderrR
	r.mu.Lock()
	r.pid = r.cmd.Process.Pid
	if r.killed {
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	}
	r.mu.Unlock()
	go r.reap(r.pid)
	return nil
}

// reap waits for the provider's process to end, kills the rest of its
// group, reaps it, and closes the pipes once the provider's output is
// read or pipeWaitDelay has passed.
func (r *groupRunner) reap(pid int) {
	waitUntilEnded(pid)
	r.mu.Lock()
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	r.ended = true
	r.mu.Unlock()
	r.waitErr = r.cmd.Wait()
	close(r.exited)
	// Reads of a closed file end with an error, which go-plugin logs
	// (at worst) and takes as the end of the output.
	time.AfterFunc(pipeWaitDelay, func() {
		_ = r.stdout.Close()
		_ = r.stderr.Close()
	})
}

// waitUntilEnded blocks until the process pid has ended, without reaping
// it (waitid with WNOWAIT), so that its id, which is also its group's,
// stays taken until cmd.Wait.
func waitUntilEnded(pid int) {
	const pPID = 1 // idtype_t P_PID
	// siginfo_t is 128 bytes on Linux.
	var info [128]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			// 0, or ECHILD if it was reaped already (it cannot have
			// been: only reap reaps it).
			return
		}
	}
}

// kill kills the provider's process group, unless the provider has ended
// (its group was killed then).
func (r *groupRunner) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	if r.pid == 0 || r.ended {
		return
	}
	_ = syscall.Kill(-r.pid, syscall.SIGKILL)
}

// Kill kills the provider's process group. It does not wait.
func (r *groupRunner) Kill(context.Context) error {
	r.kill()
	return nil
}

// Wait waits until the provider's process has been reaped.
func (r *groupRunner) Wait(ctx context.Context) error {
	select {
	case <-r.exited:
		return r.waitErr
	case <-ctx.Done():
		return fmt.Errorf("wait for provider %s: %w", r.cmd.Path, ctx.Err())
	}
}

// hasExited reports whether the provider's process has been reaped.
func (r *groupRunner) hasExited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// exitedByItself reports whether the provider's process has been reaped
// and ended otherwise than by SIGKILL, which is how it is killed.
func (r *groupRunner) exitedByItself() bool {
	if !r.hasExited() {
		return false
	}
	var ee *exec.ExitError
	if errors.As(r.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return false
		}
	}
	return true
}

func (r *groupRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *groupRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *groupRunner) Name() string          { return r.cmd.Path }

// ID is the provider's process id ("" before it started).
func (r *groupRunner) ID() string {
	if pid := r.processID(); pid != 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

// processID is the provider's process id, or 0 before it started.
func (r *groupRunner) processID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

// Diagnose is added to go-plugin's error for a first line on stdout that
// is not a handshake.
func (r *groupRunner) Diagnose(context.Context) string {
	return "(is it a Landscaper provider? A provider must print the go-plugin handshake first on stdout)"
}

// PluginToHost and HostToPlugin: the provider runs on this host, so its
// addresses are ours.
func (r *groupRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *groupRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
