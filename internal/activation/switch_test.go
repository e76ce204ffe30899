package activation_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/activation"
	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// The activation is run here as the pull agent runs it, with the real
// scripts and a Local runner, but inside a stand-in host's namespace (its
// own /nix and /run: this machine's are not touched), on stand-in systems
// whose switch-to-configuration succeeds or fails as asked.

// host is a stand-in host holding the given systems in its store.
type host struct {
	*testhost.Host
	local activation.Local
}

func newHost(t *testing.T, systems ...string) *host {
	t.Helper()
	h := &host{Host: testhost.Start(t, testhost.Options{})}
	h.local = activation.Local{Command: h.Command}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	closure, err := exec.CommandContext(ctx, "nix-store", append([]string{"-qR"}, systems...)...).Output()
	if err != nil {
		t.Fatalf("closure of %v: %v", systems, err)
	}
	export := exec.CommandContext(ctx, "nix-store", append([]string{"--export"}, strings.Fields(string(closure))...)...)
	imp := h.Command(ctx, "nix-store", "--import")
	pipe, err := export.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var stderr strings.Builder
	imp.Stderr = &stderr
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	if err := imp.Run(); err != nil {
		t.Fatalf("import into the host's store: %v\n%s", err, stderr.String())
	}
	if err := export.Wait(); err != nil {
		t.Fatalf("nix-store --export: %v", err)
	}
	return h
}

// log is a Reporter that keeps the lines.
type log struct {
	mu    sync.Mutex
	lines []string
}

func (l *log) Progress(step string) { l.Logf("progress: %s", step) }

func (l *log) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// driver is the pull agent's kind of driver on h: a new connection is
// whatever reach does (nil: it succeeds).
func (h *host) driver(r activation.Runner, report activation.Reporter, reach func() error) activation.Driver {
	return activation.Driver{
		Host: "standin", Deployer: "the test", Runner: r, Report: report,
		Reach: activation.Reach{
			Connect: func(ctx context.Context, within time.Duration) (activation.Conn, error) {
				if reach != nil {
					if err := reach(); err != nil {
						return nil, err
					}
				}
				return h.local, nil
			},
			Step:   "new connection after activation",
			Missed: "no new connection within confirmTimeout",
		},
	}
}

// params switch to toplevel from what h runs now.
func (h *host) params(t *testing.T, toplevel string) activation.Params {
	t.Helper()
	p, err := activation.Inspect(context.Background(), h.local, toplevel, true)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if !p.Present {
		t.Fatalf("the host's store does not hold %s", toplevel)
	}
	return activation.Params{Toplevel: toplevel, Current: p.Current, Profile: p.Profile, Test: true, Boot: true,
		ActivationTimeout: 30 * time.Second, ConfirmTimeout: 5 * time.Second}
}

// status is the supervisor's last status of the activation of toplevel
// ("" before it began).
func (h *host) status(t *testing.T, toplevel string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(h.Dir, "run", "landscaper", strings.SplitN(path.Base(toplevel), "-", 2)[0]+"-*"))
	switch {
	case len(dirs) == 0:
		return ""
	case len(dirs) > 1:
		t.Fatalf("activation directories of %s: %v, want one", toplevel, dirs)
	}
	b, _ := os.ReadFile(filepath.Join(dirs[0], "status"))
	return strings.TrimSpace(string(b))
}

func count(lines []string, line string) int {
	n := 0
	for _, l := range lines {
		if l == line {
			n++
		}
	}
	return n
}

// TestSwitch: a system that passes its checks becomes the running system
// and the boot default; one that fails in any way leaves the previous
// one running and booting, and the error says which step failed and that
// the host rolled back.
func TestSwitch(t *testing.T) {
	t.Parallel()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(healthy.Close)
	v1 := testhost.BuildSystem(t, testhost.System{Name: "activation-v1", Healthy: true})
	gone := errors.New("the server is gone")
	okCheck := activation.HealthCheck{Command: "test -e /run/current-system/healthy", Timeout: 5 * time.Second}
	cases := []struct {
		name   string
		system testhost.System
		checks []activation.HealthCheck
		// unreachable: the new connection after the activation fails.
		unreachable       bool
		activationTimeout time.Duration
		// step is the step that fails ("" none), want what the error says.
		step   string
		want   []string
		log    string
		status string
		// ranBoot: the new system's boot step ran.
		ranBoot bool
	}{
		{name: "success", system: testhost.System{Healthy: true},
			checks: []activation.HealthCheck{okCheck, {URL: healthy.URL, Timeout: 5 * time.Second}},
			status: "confirmed", ranBoot: true},
		{name: "success without checks", status: "confirmed", ranBoot: true},
		{name: "exit 4", system: testhost.System{Failure: testhost.Exit4}, checks: []activation.HealthCheck{okCheck},
			step: "activate", want: []string{"exited with status 4: units failed (broken.service, other.service)", "\nwarning: the following units failed"},
			log: "the following units failed: broken.service, other.service", status: "rolled-back exit-4 0"},
		{name: "exit 100", system: testhost.System{Failure: testhost.Exit100},
			step: "activate", want: []string{"exited with status 100", "reboot is needed"}, status: "rolled-back exit-100 0"},
		{name: "hang", system: testhost.System{Failure: testhost.Hang}, activationTimeout: time.Second,
			step: "activate", want: []string{"exited with status 124", "did not finish within activationTimeout"}, status: "rolled-back exit-124 0"},
		{name: "health check", system: testhost.System{Healthy: false},
			checks: []activation.HealthCheck{{Command: "test -e /run/current-system/healthy", Timeout: 5 * time.Second, Retries: 1, Interval: 100 * time.Millisecond}},
			step:   "health checks", want: []string{`health check "test -e /run/current-system/healthy" failed 2 times`}, status: "rolled-back abort 0"},
		{name: "url check", system: testhost.System{Healthy: true},
			checks: []activation.HealthCheck{{URL: healthy.URL + "/missing", Timeout: 5 * time.Second}},
			step:   "health checks", want: []string{`health check "GET ` + healthy.URL + `/missing" failed 1 times`}, status: "rolled-back abort 0"},
		{name: "no new connection", system: testhost.System{Healthy: true}, checks: []activation.HealthCheck{okCheck}, unreachable: true,
			step: "new connection after activation", want: []string{gone.Error()}, status: "rolled-back no-new-connection 0"},
		{name: "boot entry", system: testhost.System{Failure: testhost.BootFails}, ranBoot: true,
			step: "boot entry", want: []string{"Failed to install bootloader", "rolled back: re-activated " + v1 + ", boot default " + v1}, status: "confirmed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.system.Name = "activation-" + strings.ReplaceAll(tc.name, " ", "-")
			v2 := testhost.BuildSystem(t, tc.system)
			h := newHost(t, v1, v2)
			if err := activation.Switch(context.Background(), h.driver(h.local, &log{}, nil), h.params(t, v1)); err != nil {
				t.Fatalf("first activation: %v", err)
			}
			if h.CurrentSystem() != v1 || h.ProfileSystem() != v1 || h.BootDefault() != v1 {
				t.Fatalf("after the first activation: current %q, profile %q, boot default %q", h.CurrentSystem(), h.ProfileSystem(), h.BootDefault())
			}

			p := h.params(t, v2)
			p.Checks = tc.checks
			if tc.activationTimeout > 0 {
				p.ActivationTimeout = tc.activationTimeout
			}
			var reach func() error
			if tc.unreachable {
				p.ConfirmTimeout = time.Second
				reach = func() error { return gone }
			}
			lines := &log{}
			err := activation.Switch(context.Background(), h.driver(h.local, lines, reach), p)
			t.Logf("error: %v\nlog:\n%s", err, lines)
			acts := h.Activations()
			if got := count(acts, v2+" boot") > 0; got != tc.ranBoot {
				t.Errorf("boot step of the new system ran: %v, want %v: %q", got, tc.ranBoot, acts)
			}
			if s := h.status(t, v2); s != tc.status {
				t.Errorf("supervisor status %q, want %q", s, tc.status)
			}
			if tc.step == "" {
				if err != nil {
					t.Fatalf("switch to %s: %v", v2, err)
				}
				if h.CurrentSystem() != v2 || h.ProfileSystem() != v2 || h.BootDefault() != v2 {
					t.Errorf("current %q, profile %q, boot default %q; want all %s", h.CurrentSystem(), h.ProfileSystem(), h.BootDefault(), v2)
				}
				for _, c := range tc.checks {
					if !strings.Contains(lines.String(), "health check passed: "+c.String()) {
						t.Errorf("the log does not say check %q passed", c)
					}
				}
				return
			}
			var se *activation.StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *StepError", err, err)
			}
			if se.Step != tc.step || !se.RolledBack() {
				t.Errorf("step %q, rolled back %v; want step %q rolled back (%s)", se.Step, se.RolledBack(), tc.step, se.Outcome)
			}
			for _, want := range append(tc.want, "standin: "+tc.step+" failed") {
				if !strings.Contains(se.Error(), want) {
					t.Errorf("error does not say %q:\n%s", want, se.Error())
				}
			}
			if tc.log != "" && !strings.Contains(se.Log, tc.log) {
				t.Errorf("log %q does not say %q", se.Log, tc.log)
			}
			if h.CurrentSystem() != v1 || h.ProfileSystem() != v1 || h.BootDefault() != v1 {
				t.Errorf("current %q, profile %q, boot default %q; want all the previous %s", h.CurrentSystem(), h.ProfileSystem(), h.BootDefault(), v1)
			}
			if n := count(acts, v1+" test"); n != 2 {
				t.Errorf("previous system activated %d times, want 2 (first activation, rollback): %q", n, acts)
			}
		})
	}
}

// dropping is a connection that breaks during its first script, once
// that printed its first line (the start script: once the supervisor
// runs, while it waits for the outcome), as an SSH connection does when
// the new system restarts sshd; nothing runs over it after that.
type dropping struct {
	activation.Runner
	runs atomic.Int32
}

func (d *dropping) Run(ctx context.Context, name, script string, stdin io.Reader, args ...string) (string, error) {
	if d.runs.Add(1) > 1 {
		return "", errors.New("connection lost")
	}
	out, err := d.Runner.Run(ctx, name, script, stdin, args...)
	if err != nil {
		return out, err
	}
	first, _, _ := strings.Cut(out, "\n")
	return first + "\n", errors.New("connection lost")
}

// TestStatusOverNewConnections: once the connection that started the
// activation fails, the status is read over new ones, and the activation
// completes.
func TestStatusOverNewConnections(t *testing.T) {
	t.Parallel()
	v1 := testhost.BuildSystem(t, testhost.System{Name: "activation-redial-v1"})
	h := newHost(t, v1)
	first := &dropping{Runner: h.local}
	var redials atomic.Int32
	d := h.driver(first, &log{}, nil)
	d.Redial = func(ctx context.Context) (activation.Conn, error) {
		redials.Add(1)
		return h.local, nil
	}
	p := h.params(t, v1)
	p.Boot = false // the boot entry goes over the first connection, which is gone
	if err := activation.Switch(context.Background(), d, p); err != nil {
		t.Fatalf("activation over a dropped connection: %v", err)
	}
	if first.runs.Load() < 2 || redials.Load() < 1 {
		t.Errorf("%d scripts over the first connection, %d new connections; want the status read over a new one", first.runs.Load(), redials.Load())
	}
	if h.CurrentSystem() != v1 || h.status(t, v1) != "confirmed" {
		t.Errorf("current %q, status %q", h.CurrentSystem(), h.status(t, v1))
	}
}

// TestBusy: while another activation holds the lock, nothing changes and
// the error says so.
func TestBusy(t *testing.T) {
	t.Parallel()
	v1 := testhost.BuildSystem(t, testhost.System{Name: "activation-busy-v1"})
	h := newHost(t, v1)
	if out, err := h.Exec(context.Background(), "mkdir -p /run/landscaper && setsid -f flock /run/landscaper/lock sleep 600 </dev/null >/dev/null 2>&1 && while flock -n /run/landscaper/lock true; do sleep 0.05; done"); err != nil {
		t.Fatalf("hold the lock: %v: %s", err, out)
	}
	p := h.params(t, v1)
	err := activation.Switch(context.Background(), h.driver(h.local, &log{}, nil), p)
	var se *activation.StepError
	if !errors.As(err, &se) || !se.Unchanged() || !strings.Contains(se.Error(), "another activation is in progress") {
		t.Fatalf("error %v, want another activation in progress, nothing changed", err)
	}
	if h.CurrentSystem() != "" || len(h.Activations()) != 0 {
		t.Errorf("the host changed: current %q, activations %q", h.CurrentSystem(), h.Activations())
	}
}

// TestSupervisorGone: a supervisor killed while it activates is noticed
// at once, with where its output is.
func TestSupervisorGone(t *testing.T) {
	t.Parallel()
	v1 := testhost.BuildSystem(t, testhost.System{Name: "activation-gone-v1", Healthy: true})
	v2 := testhost.BuildSystem(t, testhost.System{Name: "activation-gone-v2", Failure: testhost.Hang})
	h := newHost(t, v1, v2)
	if err := activation.Switch(context.Background(), h.driver(h.local, &log{}, nil), h.params(t, v1)); err != nil {
		t.Fatalf("first activation: %v", err)
	}
	p := h.params(t, v2)
	p.ActivationTimeout = 10 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- activation.Switch(ctx, h.driver(h.local, &log{}, nil), p) }()
	var err error
	ended := false
	t.Cleanup(func() { // before the host stops
		cancel()
		if !ended {
			<-done
		}
	})
	// The supervisor is started with setsid: the leader of a session of
	// its own, which holds the hanging activation too. All of it is
	// killed, as systemd kills a unit.
	var session int
	deadline := time.Now().Add(time.Minute)
	for session == 0 && time.Now().Before(deadline) {
		if h.status(t, v2) == "activating" {
			for _, pid := range h.Processes() {
				if sid, argv := sessionOf(pid); sid == pid && len(argv) > 1 && strings.HasSuffix(argv[1], "/supervisor.sh") {
					session = pid
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if session == 0 {
		t.Fatal("no supervisor activating within a minute")
	}
	for _, pid := range h.Processes() {
		if sid, _ := sessionOf(pid); sid == session {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Logf("kill %d: %v", pid, err)
			}
		}
	}
	select {
	case err = <-done:
		ended = true
	case <-time.After(time.Minute):
		t.Fatal("the activation did not notice its supervisor was gone within a minute")
	}
	for _, want := range []string{"activate failed", "the activation supervisor on the target ended without a result", `while its status was "activating"`, "supervisor.log", "the host runs " + v1} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// sessionOf is the session of a process and its arguments (0 and none
// when it is gone).
func sessionOf(pid int) (int, []string) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, nil
	}
	// After the command's name in parentheses: state, ppid, pgrp, session.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 4 {
		return 0, nil
	}
	sid, _ := strconv.Atoi(fields[3])
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return sid, strings.Split(string(cmdline), "\x00")
}

// counting is a Runner that counts the scripts it runs.
type counting struct {
	activation.Runner
	runs atomic.Int32
}

func (c *counting) Run(ctx context.Context, name, script string, stdin io.Reader, args ...string) (string, error) {
	c.runs.Add(1)
	return c.Runner.Run(ctx, name, script, stdin, args...)
}

func (c *counting) Close() error { return nil }

// TestRoundTrips: an activation takes one script over the connection it
// starts on (start the supervisor and wait for the outcome) and, over
// the new connection, one per health check and one to confirm and set
// the boot default, which reads the host too: every script is a round
// trip, and for nixos.system an SSH session, on every host of a fleet.
// The supervisor learns of the driver's files at once (the driver ends
// its timer): with an hour to confirm, and about 35 s for the checks,
// the activation ends well within the 25 s it is given.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	check := activation.HealthCheck{Command: "test -e /run/current-system/healthy", Timeout: 5 * time.Second}
	cases := []struct {
		name   string
		checks []activation.HealthCheck
		// first and reach are the scripts over the first and the new
		// connection.
		first, reach int32
	}{
		{name: "no checks", first: 1, reach: 1},
		{name: "one check", checks: []activation.HealthCheck{check}, first: 1, reach: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			label := strings.ReplaceAll(tc.name, " ", "-")
			v1 := testhost.BuildSystem(t, testhost.System{Name: "activation-trips-v1-" + label, Healthy: true})
			v2 := testhost.BuildSystem(t, testhost.System{Name: "activation-trips-v2-" + label, Healthy: true})
			h := newHost(t, v1, v2)
			if err := activation.Switch(context.Background(), h.driver(h.local, &log{}, nil), h.params(t, v1)); err != nil {
				t.Fatalf("first activation: %v", err)
			}
			first, reach := &counting{Runner: h.local}, &counting{Runner: h.local}
			d := h.driver(first, &log{}, nil)
			d.Reach.Connect = func(context.Context, time.Duration) (activation.Conn, error) { return reach, nil }
			p := h.params(t, v2)
			p.Checks = tc.checks
			p.ConfirmTimeout = time.Hour
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			after, read, err := activation.SwitchAndProbe(ctx, d, p)
			if err != nil {
				t.Fatalf("switch to %s: %v", v2, err)
			}
			if first.runs.Load() != tc.first || reach.runs.Load() != tc.reach {
				t.Errorf("%d scripts over the first connection and %d over the new one, want %d and %d", first.runs.Load(), reach.runs.Load(), tc.first, tc.reach)
			}
			if !read || after.Current != v2 || after.Profile != v2 || after.Booted != "" {
				t.Errorf("read the host after: %v, current %q, profile %q, booted %q; want current and profile %s, nothing booted", read, after.Current, after.Profile, after.Booted, v2)
			}
			if h.CurrentSystem() != v2 || h.ProfileSystem() != v2 || h.BootDefault() != v2 || h.status(t, v2) != "confirmed" {
				t.Errorf("current %q, profile %q, boot default %q, status %q; want %s confirmed", h.CurrentSystem(), h.ProfileSystem(), h.BootDefault(), h.status(t, v2), v2)
			}
		})
	}
}
