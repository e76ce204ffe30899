package packagingtest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/systemdhost"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
)

// agentUnitTimeout bounds each wait for the agent in the container.
const agentUnitTimeout = 3 * time.Minute

// TestAgentUnitUnderSystemd runs the agent's unit, as the module makes
// it, hardening included, under a real systemd (a container of
// internal/systemdhost) against `landscaper serve` with the boot server
// module's arguments on this machine, and has it apply two generations
// of a stand-in system that nothing triggers but the long-poll: the
// closure fetched into the container's store, a secret written, the
// activation in a transient unit, health check, then the system profile
// and the boot default set from inside the unit. So the sandbox leaves
// the agent able to do all of that.
//
// The container is Debian, not NixOS: the module's PATH entries of
// store paths (nix, util-linux) and NixOS's default service PATH are
// Debian's /usr/bin and /bin there.
func TestAgentUnitUnderSystemd(t *testing.T) {
	systemdhost.RequireTools(t)
	rootfs := systemdhost.RootFS(t)
	c := systemdhost.Start(t, rootfs, systemdhost.Options{})
	hostAddr := hostEnd(t, c.Address)

	pullDir := t.TempDir()
	s := startModuleServe(t, map[string]any{"bootDir": t.TempDir(), "ipxeDir": t.TempDir(), "pullDir": pullDir, "httpListen": hostAddr + ":0"})
	m := regexp.MustCompile(`http=([0-9.]+:[0-9]+)`).FindStringSubmatch(s.line)
	if m == nil {
		t.Fatalf("no HTTP address in %q", s.line)
	}
	serverPub, err := os.ReadFile(filepath.Join(pullDir, "server.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := pulldir.ParseHostKey(c.HostPublicKey(t))
	if err != nil {
		t.Fatal(err)
	}
	id := pulldir.HostID(hostKey)
	dir := pulldir.Dir{Path: pullDir}

	// The agent's binary, and its unit with the module's defaults.
	installStaticLandscaper(t, filepath.Join(c.Root(), "usr", "local", "bin", "landscaper"))
	r := evalAgentModule(t, map[string]map[string]any{"unit": agentCase(map[string]any{
		"server":    "http://" + m[1],
		"serverKey": strings.TrimSpace(string(serverPub)),
	})})
	u := *r.Cases["unit"].Unit
	var path []string
	for _, p := range u.Path {
		if strings.HasPrefix(p, "/nix/store/") {
			p = "/usr"
		}
		path = append(path, p)
	}
	u.Path = append(path, "/usr", "/")
	unit := strings.ReplaceAll(u.unitFile(), fakeLandscaper+"/bin/landscaper", "/usr/local/bin/landscaper")
	if err := os.WriteFile(filepath.Join(c.Root(), "etc", "systemd", "system", "landscaper-agent.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}

	const secret = "token 51c0ffee of the agent unit test"
	publish := func(name string) string {
		toplevel := systemdhost.BuildSystem(t, systemdhost.System{Name: name, Units: []string{"standin-web.service"}})
		sealed, err := pullsecret.Seal(hostKey, []byte(secret+" "+name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.Publish(hostKey, pulldir.Desired{
			Toplevel:          toplevel,
			HealthChecks:      []pulldir.HealthCheck{{Command: "systemctl is-active standin-web.service", Timeout: 10, Retries: 3, Interval: 1}},
			ConfirmTimeout:    30,
			ActivationTimeout: 120,
			Secrets:           []pulldir.Secret{{Path: "/run/keys/agent-unit-token", Mode: "0400", Age: sealed}},
		}); err != nil {
			t.Fatal(err)
		}
		return toplevel
	}
	v1 := publish("agent-unit-v1")

	inContainer := func(script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := c.Exec(ctx, script)
		if err != nil {
			t.Fatalf("%v\njournal of the agent:\n%s", err, agentJournal(c))
		}
		return strings.TrimSpace(out)
	}
	inContainer("systemctl daemon-reload && systemctl start landscaper-agent.service")

	for gen, toplevel := range []string{v1, ""} {
		name := "agent-unit-v" + string(rune('1'+gen))
		if toplevel == "" {
			// The agent is waiting in its long-poll: publishing is all
			// it takes.
			toplevel = publish(name)
		}
		rep := waitReport(t, c, dir, id, int64(gen+1))
		if rep.Result != pulldir.ResultActivated || rep.Current != toplevel || rep.Profile != toplevel {
			t.Fatalf("generation %d: report %+v, want activated, current and profile %s\njournal of the agent:\n%s", gen+1, rep, toplevel, agentJournal(c))
		}
		// The boot step ran in the agent's unit: nix-env set the system
		// profile, the system's switch-to-configuration boot the boot
		// default.
		if got := inContainer("readlink -f /nix/var/nix/profiles/system"); got != toplevel {
			t.Errorf("generation %d: the system profile is %s, want %s", gen+1, got, toplevel)
		}
		if got := c.BootDefault(); got != toplevel {
			t.Errorf("generation %d: the boot default is %q, want %s", gen+1, got, toplevel)
		}
		if got := inContainer("stat -c %a /run/keys/agent-unit-token && cat /run/keys/agent-unit-token"); got != "400\n"+secret+" "+name {
			t.Errorf("generation %d: the secret file is %q, want mode 400 and its contents", gen+1, got)
		}
		// The activation ran outside the agent's sandbox.
		if cg := c.ActivationCgroup(name); !regexp.MustCompile(`^0::/system\.slice/landscaper-activate-[0-9a-z]+-[0-9]+\.service$`).MatchString(cg) {
			t.Errorf("generation %d: the activation ran in cgroup %q, not a transient unit landscaper-activate-*", gen+1, cg)
		}
	}

	// The hardening was in force: no new privileges, a system call filter.
	status := inContainer(`grep -E '^(NoNewPrivs|Seccomp):' /proc/$(systemctl show -p MainPID --value landscaper-agent.service)/status`)
	if !regexp.MustCompile(`NoNewPrivs:\s+1\nSeccomp:\s+2`).MatchString(status) {
		t.Errorf("the agent's process status says\n%s\nwant NoNewPrivs 1 and Seccomp 2 (filter)", status)
	}
	if got := inContainer("stat -c %a /var/lib/landscaper-agent && ls /var/lib/landscaper-agent"); got != "700\nstate.json\ntrigger.sock" {
		t.Errorf("the state directory (StateDirectory=) holds %q, want mode 700 with state.json and trigger.sock", got)
	}
	// "Update now", as the README has it.
	inContainer("/usr/local/bin/landscaper agent --trigger --state-dir /var/lib/landscaper-agent")
	deadline := time.Now().Add(agentUnitTimeout)
	for !strings.Contains(agentJournal(c), "triggered: starting a cycle") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not start a cycle on --trigger:\n%s", agentJournal(c))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := inContainer("systemctl is-active landscaper-agent.service"); got != "active" {
		t.Errorf("the agent's unit is %s after the cycles, want active", got)
	}
	if err := s.stop(); err != nil {
		t.Errorf("landscaper serve, stopped by SIGTERM: %v\n%s", err, s.log())
	}
}

// waitReport waits until the host reported the generation.
func waitReport(t *testing.T, c *systemdhost.Container, dir pulldir.Dir, id string, gen int64) pulldir.Report {
	t.Helper()
	deadline := time.Now().Add(agentUnitTimeout)
	for {
		reports, err := dir.Reports(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reports {
			if r.Generation == gen {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report of generation %d within %s; journal of the agent:\n%s", gen, agentUnitTimeout, agentJournal(c))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func agentJournal(c *systemdhost.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.Exec(ctx, "journalctl --no-pager -o cat -u landscaper-agent.service; systemctl status --no-pager landscaper-agent.service")
	if err != nil {
		return err.Error()
	}
	return out
}

// hostEnd is this machine's end of the container's /30 (the .1 before the
// container's .2).
func hostEnd(t *testing.T, container string) string {
	t.Helper()
	ip := net.ParseIP(container).To4()
	if ip == nil || ip[3]&3 != 2 {
		t.Fatalf("container address %q is not the .2 of a /30", container)
	}
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]-1).String()
}

var (
	staticOnce sync.Once
	staticDir  string
	staticErr  error
	staticOut  []byte
)

// installStaticLandscaper copies a landscaper built without cgo (so it
// runs on the container's libc, whatever it is) to dst.
func installStaticLandscaper(t *testing.T, dst string) {
	t.Helper()
	staticOnce.Do(func() {
		staticDir, staticErr = os.MkdirTemp("", "landscaper-packagingtest-static-")
		if staticErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(staticDir, "landscaper"), "./landscaper/cmd/landscaper")
		cmd.Dir = root(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		staticOut, staticErr = cmd.CombinedOutput()
	})
	if staticErr != nil {
		t.Fatalf("build landscaper without cgo: %v\n%s", staticErr, staticOut)
	}
	b, err := os.ReadFile(filepath.Join(staticDir, "landscaper"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
