package nixops4provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	wire "github.com/landscaper-nix/landscaper/proto/nixops4"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// stopGrace is how long a provider has to exit after its stdin is closed
// before its process group is killed.
const stopGrace = 3 * time.Second

// process is one running provider process. Requests go one at a time:
// v0 answers each request line with one response line, in order.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	out    *wire.Reader
	// exited is closed once the process has been reaped; waitErr is then
	// its exit status.
	exited  chan struct{}
	waitErr error

	// stderr is read without blocking, under mu (see drainStderr).
	stderr   *os.File
	stderrFd int

	mu sync.Mutex
	// sink receives the stderr lines written during a request.
	sink    resource.EventSink
	tail    []string
	partial []byte
	fault   error
}

func startProcess(spec Spec) (*process, error) {
	cmd := exec.Command(spec.Executable, spec.Args...)
	cmd.Dir = spec.Dir
	// Its own process group, so that killing it kills what it runs; and
	// it dies with the engine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Pipes of our own rather than StdoutPipe: Wait closes those, and
	// the last response may still be being read when the process exits.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		stdout.Close()
		stdoutW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdout.Close()
		stderr.Close()
		return nil, fmt.Errorf("start provider %s (%s): %w", spec.Name, spec.Executable, err)
	}
	p := &process{cmd: cmd, stdin: stdin, stdout: stdout, out: wire.NewReader(stdout), exited: make(chan struct{}), stderr: stderr, stderrFd: int(stderr.Fd())}
	if err := unix.SetNonblock(p.stderrFd, true); err != nil {
		p.kill()
		return nil, fmt.Errorf("provider %s: %w", spec.Name, err)
	}
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		defer stderr.Close()
		p.readStderr()
	}()
	go func() {
		<-stderrDone
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// readStderr waits for the provider's stderr to be readable and passes
// what it wrote to drainStderr, until the provider closes it.
func (p *process) readStderr() {
	fds := []unix.PollFd{{Fd: int32(p.stderrFd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		p.mu.Lock()
		open := p.drainStderr()
		p.mu.Unlock()
		if !open {
			return
		}
	}
}

// drainStderr reads what the provider's stderr holds without blocking,
// passes each line to the current request's sink and keeps the last ones
// for error messages. It reports whether stderr is still open. Called
// with p.mu held: since every read is made under p.mu, a request that
// drains after its response has seen every line written before it.
func (p *process) drainStderr() bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Read(p.stderrFd, buf)
		if n > 0 {
			p.partial = append(p.partial, buf[:n]...)
			for {
				i := bytes.IndexByte(p.partial, '\n')
				if i < 0 {
					break
				}
				p.logLine(string(p.partial[:i]))
				p.partial = p.partial[i+1:]
			}
			if len(p.partial) > 64<<10 {
				p.logLine(string(p.partial))
				p.partial = nil
			}
			continue
		}
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return true
		default: // end of file, or an error
			if len(p.partial) > 0 {
				p.logLine(string(p.partial))
				p.partial = nil
			}
			return false
		}
	}
}

func (p *process) logLine(line string) {
	p.tail = append(p.tail, line)
	if len(p.tail) > 20 {
		p.tail = p.tail[len(p.tail)-20:]
	}
	if p.sink != nil {
		p.sink.Log(line)
	}
}

func (p *process) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return ""
	}
	return "\nlast lines of its stderr:\n" + strings.Join(p.tail, "\n")
}

// roundTrip sends one request and reads its response. When ctx ends first
// the process is killed: v0 has no way to cancel a request.
func (p *process) roundTrip(ctx context.Context, req *wire.Request, sink resource.EventSink) (*wire.Response, error) {
	p.mu.Lock()
	if p.fault != nil {
		p.mu.Unlock()
		return nil, p.fault
	}
	p.sink = sink
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		// The lines written before the response belong to this request.
		p.drainStderr()
		p.sink = nil
		p.mu.Unlock()
	}()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	type answer struct {
		resp *wire.Response
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		if _, err := p.stdin.Write(append(b, '\n')); err != nil {
			done <- answer{err: fmt.Errorf("send request: %w", err)}
			return
		}
		resp, err := p.out.ReadResponse()
		done <- answer{resp, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			return nil, p.broken(a.err)
		}
		return a.resp, nil
	case <-ctx.Done():
		p.kill()
		<-done
		p.mu.Lock()
		p.fault = fmt.Errorf("the provider was stopped: %w", ctx.Err())
		p.mu.Unlock()
		return nil, ctx.Err()
	}
}

// broken marks the process as unusable after a failed exchange and
// explains the failure.
func (p *process) broken(err error) error {
	if errors.Is(err, io.EOF) {
		select {
		case <-p.exited:
			err = fmt.Errorf("it exited without answering (%v)", p.waitErr)
		case <-time.After(time.Second):
			err = errors.New("it closed its stdout without answering")
		}
	}
	err = fmt.Errorf("%w%s", err, p.stderrTail())
	p.mu.Lock()
	p.fault = err
	p.mu.Unlock()
	p.kill()
	return err
}

// stop closes the provider's stdin, which ends a v0 provider, and kills
// its process group if it has not exited within stopGrace.
func (p *process) stop() {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		p.kill()
	}
	p.stdout.Close()
}

func (p *process) kill() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	p.stdin.Close()
	<-p.exited
}

// usable reports whether requests can still be sent.
func (p *process) usable() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault != nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}
