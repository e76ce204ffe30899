package packagingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
)

// The pull agent's module, landscaper/agent-module.nix
// (services.landscaper-agent).

const (
	agentModule = "landscaper/agent-module.nix"
	// testServerKey is testdata/server.pub.
	testServerKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINnfbivYN9TnzWZddQ3CCYyUQejLjXLTkdCaBKXB++9U landscaper pull server (test)"
)

func evalAgentModule(t *testing.T, cases map[string]map[string]any) moduleResult {
	t.Helper()
	return evalModuleFile(t, agentModule, "landscaper-agent", cases)
}

// agentCase is an enabled agent with the settings every agent needs
// (server, serverKey), and extra on top.
func agentCase(extra map[string]any) map[string]any {
	c := map[string]any{"enable": true, "server": "http://landscaper.example:8069", "serverKey": testServerKey}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestAgentModuleOptions(t *testing.T) {
	r := evalAgentModule(t, map[string]map[string]any{})
	want := []string{"enable", "enrollTokenFile", "extraArgs", "hostKey", "interval", "package", "role", "server", "serverKey", "stateDir"}
	got := keysOf(r.Options)
	if !slices.Equal(got, want) {
		t.Errorf("services.landscaper-agent options are %v, want %v", got, want)
	}
	for name, o := range r.Options {
		if strings.TrimSpace(o.Description) == "" {
			t.Errorf("option %s has no description", name)
		}
	}
	if r.Options["package"].HasDefault {
		t.Errorf("the agent module's package option has a default; the flake's module is what sets it")
	}
	for _, name := range []string{"server", "serverKey", "role", "enrollTokenFile"} {
		if d := string(r.Options[name].Default); d != "null" {
			t.Errorf("services.landscaper-agent.%s defaults to %s, want null", name, d)
		}
	}
	for _, name := range []string{"role", "enrollTokenFile"} {
		if !strings.Contains(r.Options[name].Description, "nixos.pull-role") {
			t.Errorf("services.landscaper-agent.%s's description does not say it enrolls the machine in a role of nixos.pull-role:\n%s", name, r.Options[name].Description)
		}
	}
	// The private key and the token must not be Nix paths: a path literal
	// would copy them into the world-readable store.
	for _, name := range []string{"hostKey", "enrollTokenFile"} {
		if typ := r.Options[name].Type; strings.Contains(typ, "path") {
			t.Errorf("services.landscaper-agent.%s has type %q: a Nix path would copy a secret into the store", name, typ)
		}
	}

	// The defaults the module passes explicitly are the CLI's own.
	flags := commandFlags(t, "agent")
	for option, flag := range map[string]string{"hostKey": "host-key", "stateDir": "state-dir"} {
		var def string
		if err := json.Unmarshal(r.Options[option].Default, &def); err != nil {
			t.Fatalf("default of %s: %v", option, err)
		}
		if def != flags[flag] {
			t.Errorf("services.landscaper-agent.%s defaults to %q, landscaper agent --%s to %q", option, def, flag, flags[flag])
		}
	}
	var interval string
	_ = json.Unmarshal(r.Options["interval"].Default, &interval)
	mod, err1 := time.ParseDuration(interval)
	cli, err2 := time.ParseDuration(flags["interval"])
	if err1 != nil || err2 != nil || mod != cli {
		t.Errorf("services.landscaper-agent.interval defaults to %q, landscaper agent --interval to %q", interval, flags["interval"])
	}
}

func TestAgentModuleConfig(t *testing.T) {
	const fakeNix = "/nix/store/00000000000000000000000000000000-nix"
	oddServer := "http://[2001:db8::1]:8069/pull%20x$y"
	oddKey := `/etc/landscaper/server key %h $HOME "q".pub`
	cases := map[string]map[string]any{
		"disabled": {},
		"defaults": agentCase(nil),
		"role": agentCase(map[string]any{
			"role":            "web",
			"enrollTokenFile": "/run/keys/enroll-token",
			"extraArgs":       []string{"--no-color"},
		}),
		"odd": agentCase(map[string]any{
			"server":          oddServer,
			"serverKey":       oddKey,
			"hostKey":         "/etc/ssh/host key%i",
			"stateDir":        "/srv/agent state%n$x",
			"interval":        "1h30m",
			"role":            `we"b's %r$1`,
			"enrollTokenFile": "/run/keys/to ken%t",
			"extraArgs":       []string{`--x=$y %z "q"`},
		}),
		"serverKeyFile":  agentCase(map[string]any{"serverKey": map[string]any{"__path": "landscaper/packagingtest/testdata/server.pub"}}),
		"stateElsewhere": agentCase(map[string]any{"stateDir": "/srv/landscaper-agent"}),
		"stateNested":    agentCase(map[string]any{"stateDir": "/var/lib/landscaper/agent/"}),
		"stateDotted":    agentCase(map[string]any{"stateDir": "/var/lib/../srv/agent"}),
	}
	r := evalAgentModule(t, cases)
	for name, c := range r.Cases {
		if len(c.FailedAssertions) > 0 {
			t.Errorf("%s: failed assertions: %q", name, c.FailedAssertions)
		}
	}
	if keys := r.Cases["disabled"].ConfigKeys; len(keys) != 0 {
		t.Errorf("with enable = false the module still sets %v", keys)
	}

	bin := fakeLandscaper + "/bin/landscaper"
	d := r.Cases["defaults"]
	if d.Unit == nil {
		t.Fatal("defaults: no systemd.services.landscaper-agent")
	}
	wantArgs := []string{bin, "agent", "--server=http://landscaper.example:8069", "--server-key=" + testServerKey,
		"--host-key=/etc/ssh/ssh_host_ed25519_key", "--state-dir=/var/lib/landscaper-agent", "--interval=5m"}
	if got := execArgs(t, *d.ExecStart); !slices.Equal(got, wantArgs) {
		t.Errorf("defaults: ExecStart arguments\n got %q\nwant %q", got, wantArgs)
	}
	if !slices.Equal(d.SystemPackages, []string{fakeLandscaper}) {
		t.Errorf("defaults: environment.systemPackages = %v, want the package (landscaper agent --trigger)", d.SystemPackages)
	}
	u := d.Unit
	if !slices.Contains(u.WantedBy, "multi-user.target") || !slices.Contains(u.After, "network-online.target") || !slices.Contains(u.Wants, "network-online.target") {
		t.Errorf("defaults: wantedBy %v, after %v, wants %v; want multi-user.target, and network-online.target wanted and after", u.WantedBy, u.After, u.Wants)
	}
	// A restart or stop by switch-to-configuration would kill the agent
	// while it confirms the generation being activated.
	if u.RestartIfChanged == nil || *u.RestartIfChanged || u.UnitConfig["X-StopOnRemoval"] != false {
		t.Errorf("defaults: restartIfChanged %v, X-StopOnRemoval %v; want both false", u.RestartIfChanged, u.UnitConfig["X-StopOnRemoval"])
	}
	if u.UnitConfig["StartLimitIntervalSec"] != float64(0) {
		t.Errorf("defaults: StartLimitIntervalSec = %v, want 0 (never stop restarting)", u.UnitConfig["StartLimitIntervalSec"])
	}
	// nix-store and nix-env for the fetch and the profile, flock for the
	// supervisor's lock.
	if !slices.Contains(u.Path, fakeNix) || !slices.Contains(u.Path, "/nix/store/00000000000000000000000000000000-util-linux") {
		t.Errorf("defaults: path %q lacks nix or util-linux", u.Path)
	}
	for k, v := range map[string]any{"Type": "exec", "Restart": "always", "RestartSec": "10s", "User": "root", "StateDirectory": "landscaper-agent", "StateDirectoryMode": "0700"} {
		if u.ServiceConfig[k] != v {
			t.Errorf("defaults: serviceConfig.%s = %v, want %v", k, u.ServiceConfig[k], v)
		}
	}
	checkAgentHardening(t, d.ServiceConfig)

	ro := r.Cases["role"]
	wantTail := []string{"--interval=5m", "--role=web", "--enroll-token-file=/run/keys/enroll-token", "--no-color"}
	if got := execArgs(t, *ro.ExecStart); !slices.Equal(got[len(got)-len(wantTail):], wantTail) || len(got) != len(wantArgs)+3 {
		t.Errorf("role: ExecStart arguments %q, want the defaults' then %q", got, wantTail[1:])
	}
	for _, name := range []string{"defaults", "serverKeyFile", "stateElsewhere"} {
		for _, a := range execArgs(t, *r.Cases[name].ExecStart) {
			if strings.HasPrefix(a, "--role") || strings.HasPrefix(a, "--enroll-token-file") {
				t.Errorf("%s: passes %q without role and enrollTokenFile set", name, a)
			}
		}
	}

	o := r.Cases["odd"]
	wantArgs = []string{bin, "agent", "--server=" + oddServer, "--server-key=" + oddKey, "--host-key=/etc/ssh/host key%i",
		"--state-dir=/srv/agent state%n$x", "--interval=1h30m", `--role=we"b's %r$1`, "--enroll-token-file=/run/keys/to ken%t", `--x=$y %z "q"`}
	if got := execArgs(t, *o.ExecStart); !slices.Equal(got, wantArgs) {
		t.Errorf("odd: ExecStart arguments\n got %q\nwant %q", got, wantArgs)
	}
	for _, raw := range []string{`"--state-dir=/srv/agent state%%n$$x"`, `"--role=we\"b's %%r$$1"`} {
		if !strings.Contains(*o.ExecStart, raw) {
			t.Errorf("odd: ExecStart does not hold %s (quoted, %% and $ escaped for systemd): %s", raw, *o.ExecStart)
		}
	}
	if _, ok := o.ServiceConfig["StateDirectory"]; ok {
		t.Errorf("odd: StateDirectory set for a state directory outside /var/lib: %s", o.ServiceConfig["StateDirectory"])
	}

	// A Nix path goes to the store, which is fine for a public key: the
	// argument is the store path of testdata/server.pub (nix-store --add
	// makes the same path of it).
	args := execArgs(t, *r.Cases["serverKeyFile"].ExecStart)
	added, err := exec.Command("nix-store", "--add", filepath.Join(root(t), "landscaper", "packagingtest", "testdata", "server.pub")).Output()
	if err != nil {
		t.Fatalf("nix-store --add testdata/server.pub: %v", err)
	}
	if want := "--server-key=" + strings.TrimSpace(string(added)); args[3] != want {
		t.Errorf("serverKeyFile: the module passes %q, want %q", args[3], want)
	}

	for name, want := range map[string]any{"stateElsewhere": nil, "stateNested": "landscaper/agent", "stateDotted": nil} {
		var got any
		if raw, ok := r.Cases[name].ServiceConfig["StateDirectory"]; ok {
			_ = json.Unmarshal(raw, &got)
		}
		if got != want {
			t.Errorf("%s: StateDirectory = %v, want %v", name, got, want)
		}
	}

	// Every flag the module passes is one `landscaper agent` takes.
	flags := commandFlags(t, "agent")
	// --role and --enroll-token-file come with nixos.pull-role's
	// enrollment, which is being added to the CLI beside this module:
	// the CLI has both or neither, and once it lists them they are
	// checked below like the others.
	_, hasRole := flags["role"]
	_, hasToken := flags["enroll-token-file"]
	if hasRole != hasToken {
		t.Errorf("landscaper agent takes --role: %v, --enroll-token-file: %v; the module passes both together", hasRole, hasToken)
	}
	for name, c := range r.Cases {
		if c.ExecStart == nil {
			continue
		}
		args := execArgs(t, *c.ExecStart)
		extra, _ := cases[name]["extraArgs"].([]string)
		for _, a := range args[2 : len(args)-len(extra)] {
			flag, _, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !strings.HasPrefix(a, "--") || !ok {
				t.Errorf("%s: argument %q is not --flag=value", name, a)
				continue
			}
			if (flag == "role" || flag == "enroll-token-file") && !hasRole && !hasToken {
				continue
			}
			if _, known := flags[flag]; !known {
				t.Errorf("%s: the module passes --%s, which landscaper agent does not take (it takes %v)", name, flag, keys(flags))
			}
		}
	}
}

// checkAgentHardening checks the agent unit's sandboxing: the settings it
// has, and the absence of those that would confine what the agent runs in
// its unit (the boot loader's installation, the previous system's
// activation after a failed boot step, the health checks) to a mount
// namespace or a smaller set of devices and capabilities. Each missing
// one is explained in the module, next to the settings.
func checkAgentHardening(t *testing.T, sc map[string]json.RawMessage) {
	t.Helper()
	want := map[string]string{
		"NoNewPrivileges":         `true`,
		"LockPersonality":         `true`,
		"RestrictRealtime":        `true`,
		"SystemCallArchitectures": `"native"`,
		"RestrictAddressFamilies": `["AF_UNIX","AF_INET","AF_INET6","AF_NETLINK"]`,
		"SystemCallErrorNumber":   `"EPERM"`,
	}
	for k, v := range want {
		if got := string(sc[k]); got != v {
			t.Errorf("serviceConfig.%s = %s, want %s", k, got, v)
		}
	}
	// A deny list only: an allow list would refuse whatever a health check
	// or an activation script needs.
	var filter []string
	_ = json.Unmarshal(sc["SystemCallFilter"], &filter)
	for _, group := range []string{"@cpu-emulation", "@debug", "@obsolete", "@raw-io", "@reboot", "@swap"} {
		if !slices.Contains(filter, "~"+group) {
			t.Errorf("serviceConfig.SystemCallFilter = %q, want ~%s in it", filter, group)
		}
	}
	for _, f := range filter {
		if !strings.HasPrefix(f, "~") {
			t.Errorf("serviceConfig.SystemCallFilter allows only %q: the health checks and the activation run any program", f)
		}
	}
	module, err := os.ReadFile(filepath.Join(root(t), agentModule))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
		"ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ReadWritePaths", "MemoryDenyWriteExecute",
		"RestrictSUIDSGID", "RestrictNamespaces", "ProtectClock", "DeviceAllow", "ProtectHostname",
		"CapabilityBoundingSet", "UMask", "RuntimeDirectory",
	} {
		if _, ok := sc[k]; ok {
			t.Errorf("serviceConfig.%s is set: it confines what the agent runs in its unit (boot loader, activation, health checks)", k)
		}
		if !bytes.Contains(module, []byte(k)) {
			t.Errorf("%s does not say why the agent's unit has no %s", agentModule, k)
		}
	}
	for _, k := range []string{"ProcSubset", "ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "PrivateNetwork", "DynamicUser", "DevicePolicy"} {
		if _, ok := sc[k]; ok {
			t.Errorf("serviceConfig.%s is set: it confines what the agent runs in its unit", k)
		}
	}
}

func TestAgentModuleAssertions(t *testing.T) {
	for name, tc := range map[string]struct {
		settings map[string]any
		want     string
	}{
		"no server":             {map[string]any{"server": nil}, "services.landscaper-agent.server is not set"},
		"not an http url":       {map[string]any{"server": "landscaper:8069"}, "services.landscaper-agent.server (landscaper:8069) must start with http:// or https://"},
		"no server key":         {map[string]any{"serverKey": nil}, "services.landscaper-agent.serverKey is not set"},
		"relative server key":   {map[string]any{"serverKey": "server.pub"}, "services.landscaper-agent.serverKey (server.pub) is neither a key"},
		"relative host key":     {map[string]any{"hostKey": "ssh_host_ed25519_key"}, "services.landscaper-agent.hostKey (ssh_host_ed25519_key) must be an absolute path outside the Nix store"},
		"host key in the store": {map[string]any{"hostKey": "/nix/store/00000000000000000000000000000000-key"}, "services.landscaper-agent.hostKey (/nix/store/"},
		"relative state dir":    {map[string]any{"stateDir": "state"}, "services.landscaper-agent.stateDir (state) must be an absolute path"},
		"interval in words":     {map[string]any{"interval": "5 minutes"}, "services.landscaper-agent.interval (5 minutes) is not a Go duration"},
		"bare number interval":  {map[string]any{"interval": "300"}, "services.landscaper-agent.interval (300) is not a Go duration"},
		"role without token":    {map[string]any{"role": "web"}, "services.landscaper-agent.role is set (web) but services.landscaper-agent.enrollTokenFile is not"},
		"token without role":    {map[string]any{"enrollTokenFile": "/run/keys/t"}, "services.landscaper-agent.enrollTokenFile is set but services.landscaper-agent.role is not"},
		"empty role":            {map[string]any{"role": "", "enrollTokenFile": "/run/keys/t"}, "services.landscaper-agent.role is empty"},
		"relative token":        {map[string]any{"role": "web", "enrollTokenFile": "token"}, "services.landscaper-agent.enrollTokenFile (token) must be an absolute path outside the Nix store"},
		"token in the store":    {map[string]any{"role": "web", "enrollTokenFile": "/nix/store/00000000000000000000000000000000-t"}, "services.landscaper-agent.enrollTokenFile (/nix/store/"},
	} {
		c := evalAgentModule(t, map[string]map[string]any{"c": agentCase(tc.settings)}).Cases["c"]
		if len(c.FailedAssertions) != 1 || !strings.Contains(c.FailedAssertions[0], tc.want) {
			t.Errorf("%s: failed assertions %q, want one that says %q", name, c.FailedAssertions, tc.want)
		}
	}
	// What it accepts: the key or an absolute path, Go durations.
	for name, settings := range map[string]map[string]any{
		"key file":        {"serverKey": "/etc/landscaper/server.pub"},
		"https":           {"server": "https://landscaper.example/pull"},
		"compound":        {"interval": "1h2m3.5s"},
		"role with token": {"role": "web", "enrollTokenFile": "/run/keys/t"},
	} {
		c := evalAgentModule(t, map[string]map[string]any{"c": agentCase(settings)}).Cases["c"]
		if len(c.FailedAssertions) != 0 {
			t.Errorf("%s: failed assertions %q, want none", name, c.FailedAssertions)
		}
	}
}

// TestAgentUnitVerifies checks the agent's unit file, as NixOS writes it
// from the module, with systemd-analyze.
func TestAgentUnitVerifies(t *testing.T) {
	r := evalAgentModule(t, map[string]map[string]any{
		"defaults": agentCase(nil),
		"odd": agentCase(map[string]any{
			"serverKey":       `/etc/landscaper/server key %h $HOME "q".pub`,
			"stateDir":        "/srv/agent state%n$x",
			"role":            `we"b's %r$1`,
			"enrollTokenFile": "/run/keys/to ken%t",
		}),
	})
	for name, c := range r.Cases {
		if c.Unit == nil {
			t.Fatalf("%s: no systemd.services.landscaper-agent", name)
		}
		text := verifyUnit(t, "landscaper-agent.service", *c.Unit)
		for _, line := range []string{"X-RestartIfChanged=false", "X-StopOnRemoval=false", "Restart=always", "NoNewPrivileges=true"} {
			if !strings.Contains(text, "\n"+line+"\n") {
				t.Errorf("%s: the unit file has no line %s:\n%s", name, line, text)
			}
		}
	}
}

// TestAgentModuleRuns runs the built landscaper with exactly the arguments
// both modules generate: the boot server with a pull directory, and an
// agent (with --once in extraArgs) whose host key ssh-keygen made, with
// the server's key given as its contents and as the path of server.pub.
// No generation is published for the host, so the server does not know
// it: the agent's request is signed and verified, refused as from an
// unknown host, and the agent exits 1 saying so.
func TestAgentModuleRuns(t *testing.T) {
	pullDir, work := t.TempDir(), t.TempDir()
	s := startModuleServe(t, map[string]any{"bootDir": t.TempDir(), "ipxeDir": t.TempDir(), "pullDir": pullDir})
	m := regexp.MustCompile(`http=(127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(s.line)
	if m == nil {
		t.Fatalf("no HTTP address in %q", s.line)
	}
	server := "http://" + m[1]
	serverPub, err := os.ReadFile(filepath.Join(pullDir, "server.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(work, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	key, err := pulldir.ParseHostKey(string(hostPub))
	if err != nil {
		t.Fatal(err)
	}
	id := pulldir.HostID(key)

	cases := map[string]map[string]any{}
	for name, serverKey := range map[string]string{"contents": strings.TrimSpace(string(serverPub)), "path": filepath.Join(pullDir, "server.pub")} {
		cases[name] = agentCase(map[string]any{
			"server":    server,
			"serverKey": serverKey,
			"hostKey":   hostKey,
			"stateDir":  filepath.Join(work, "state-"+name),
			"interval":  "30s",
			"extraArgs": []string{"--once"},
		})
	}
	r := evalAgentModule(t, cases)
	for _, name := range keysOf(cases) {
		c := r.Cases[name]
		if len(c.FailedAssertions) > 0 {
			t.Fatalf("%s: the module refuses the settings: %q", name, c.FailedAssertions)
		}
		args := execArgs(t, *c.ExecStart)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, landscaperBinary(t), args[1:]...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("%s: landscaper %s: %v, want exit status 1\n%s", name, strings.Join(args[1:], " "), err, stderr.String())
			continue
		}
		want := "Error: /pull/v1/hosts/" + id + "/desired: server answered 403: refused: unknown host"
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: the agent's output does not say %q:\n%s", name, want, stderr.String())
		}
		if st, err := os.Stat(filepath.Join(work, "state-"+name)); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: the agent's state directory: %v, %v; want one of mode 0700", name, st, err)
		}
	}

	// Both requests reached the server signed with the host key, which it
	// verified, and were refused as from a host it does not know.
	metrics := fetch(t, server+"/metrics")
	for reason, n := range map[string]string{"unknown-host": "2", "bad-signature": "0", "unsigned": "0", "stale": "0"} {
		if want := `landscaper_pull_refused_total{reason="` + reason + `"} ` + n; !strings.Contains(metrics, want+"\n") {
			t.Errorf("the server's metrics lack %q:\n%s", want, grepLines(metrics, "landscaper_pull_refused_total"))
		}
	}
	if err := s.stop(); err != nil {
		t.Errorf("landscaper serve, stopped by SIGTERM: %v\n%s", err, s.log())
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestReadmeModuleSettings checks that every setting the README's NixOS
// examples give (or show commented out) in services.landscaper and
// services.landscaper-agent is an option of the module.
func TestReadmeModuleSettings(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`(?:^\s*|;\s+|#\s*)([a-zA-Z][a-zA-Z0-9]*) = `)
	for name, options := range map[string]map[string]moduleOption{
		"landscaper":       evalModule(t, map[string]map[string]any{}).Options,
		"landscaper-agent": evalAgentModule(t, map[string]map[string]any{}).Options,
	} {
		opening := regexp.MustCompile(`(?m)^(\s*)services\.` + regexp.QuoteMeta(name) + ` = \{\n`)
		blocks := opening.FindAllSubmatchIndex(b, -1)
		if len(blocks) == 0 {
			t.Errorf("README.md has no example of services.%s", name)
		}
		for _, m := range blocks {
			indent := string(b[m[2]:m[3]])
			body, _, found := strings.Cut(string(b[m[1]:]), "\n"+indent+"};")
			if !found {
				t.Errorf("README.md: services.%s's example at byte %d has no end", name, m[0])
				continue
			}
			n := 0
			for _, line := range strings.Split(body, "\n") {
				for _, s := range setting.FindAllStringSubmatch(line, -1) {
					n++
					if _, ok := options[s[1]]; !ok {
						t.Errorf("README.md sets services.%s.%s, which the module does not have (%q)", name, s[1], strings.TrimSpace(line))
					}
				}
			}
			if n == 0 {
				t.Errorf("README.md: found no settings in services.%s's example at byte %d", name, m[0])
			}
		}
	}
}
