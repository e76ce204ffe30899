package pullload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

// serverStartTimeout bounds the wait for the server's listening line.
const serverStartTimeout = 30 * time.Second

// Server is a running `landscaper serve --pull-dir` process.
type Server struct {
	// URL is where it listens ("http://127.0.0.1:PORT").
	URL string
	// Key is the server's signing key (server.pub), which agents pin.
	Key ssh.PublicKey
	// LogPath is the file its log goes to.
	LogPath string
	dir     pulldir.Dir
	cmd     *exec.Cmd
	done    chan struct{}
	// errorLines counts the log lines at level ERROR.
	errorLines atomic.Int64
	stopOnce   sync.Once
	scrape     *http.Client
}

var listeningRe = regexp.MustCompile(`msg="boot server listening".* http=(\S+)`)

// StartServer starts bin (the landscaper binary) as `landscaper serve
// --pull-dir dir` on a loopback port of the kernel's choosing, with TFTP
// off, its log in workDir/serve.log, and waits until it listens.
func StartServer(ctx context.Context, bin string, dir pulldir.Dir, workDir string) (*Server, error) {
	logPath := filepath.Join(workDir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	bootDir := filepath.Join(workDir, "boot")
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("boot directory: %w", err)
	}
	cmd := exec.Command(bin, "serve", "--pull-dir", dir.Path, "--boot-dir", bootDir, "--tftp-listen", "", "--http-listen", "127.0.0.1:0", "--ipxe-dir", "")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	s := &Server{LogPath: logPath, dir: dir, cmd: cmd, done: make(chan struct{}),
		scrape: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	addr := make(chan string, 1)
	var copied sync.WaitGroup
	copied.Go(func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if strings.Contains(line, "level=ERROR") {
				s.errorLines.Add(1)
			}
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logFile, stderr)
	})
	go func() {
		copied.Wait()
		_ = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("landscaper serve exited before it listened; its log: %s", logPath)
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("landscaper serve did not listen within %s; its log: %s", serverStartTimeout, logPath)
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	key, err := pullauth.ParseServerKey(filepath.Join(dir.Path, "server.pub"))
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Key = key
	return s, nil
}

// PID is the server process's ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server (SIGTERM; SIGKILL after 20 s) and waits for it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// ErrorLines is how many log lines at level ERROR the server wrote.
func (s *Server) ErrorLines() int64 { return s.errorLines.Load() }

// Metrics reads the server's /metrics: series (name and labels, as
// written) to value.
func (s *Server) Metrics(ctx context.Context) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.scrape.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server /metrics: %s", resp.Status)
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("server /metrics: line %q", line)
		}
		v, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("server /metrics: line %q: %w", line, err)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("server /metrics: %w", err)
	}
	return m, nil
}

// Memory is the server process's resident memory now and at its peak
// (VmRSS and VmHWM of /proc/PID/status), in bytes.
func (s *Server) Memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		return 0, 0, fmt.Errorf("server memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("server memory: line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("server memory: line %q: %w", line, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, errors.New("server memory: no VmRSS or VmHWM in /proc/PID/status")
	}
	return rss, peak, nil
}

// clockTicks is the unit of /proc/PID/stat's times: USER_HZ, which Linux
// fixes at 100 for user space.
const clockTicks = 100

// CPUTime is the CPU time the server process used so far, user and
// system (/proc/PID/stat; its threads included).
func (s *Server) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.PID()))
	if err != nil {
		return 0, fmt.Errorf("server CPU time: %w", err)
	}
	// The fields after the command name, which is in parentheses and
	// may hold spaces: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("server CPU time: cannot read %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("server CPU time: cannot read %q", b)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// NonceFiles counts the nonce files in the pull directory: one per
// signed request the server accepted (in the last few minutes).
func NonceFiles(dir pulldir.Dir) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(dir.Path, "nonces"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count nonce files: %w", err)
	}
	return n, nil
}
