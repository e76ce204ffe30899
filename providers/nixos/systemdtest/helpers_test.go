package systemdtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/systemdhost"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/plugin"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

const (
	providerPackage = "github.com/landscaper-nix/landscaper/providers/nixos/cmd/landscaper-provider-nixos"
	systemType      = "nixos.system"
	hostKeyType     = "nixos.host-key"
	// callTimeout bounds one Create of the provider.
	callTimeout = 5 * time.Minute
	// waitTimeout bounds a wait for something on the target.
	waitTimeout = 2 * time.Minute
)

// target is a booted systemd container with a login key for root and for
// the sudo user "deploy", and the provider binary launched for it.
type target struct {
	c        *systemdhost.Container
	login    testhost.KeyPair
	provider *plugin.Client
}

// newTarget boots a container (with hostKey as its host key, or a new one
// when empty) and launches the provider binary.
func newTarget(t *testing.T, hostKey string) *target {
	t.Helper()
	systemdhost.RequireTools(t)
	rootfs := systemdhost.RootFS(t)
	login := testhost.NewKeyPair(t)
	c := systemdhost.Start(t, rootfs, systemdhost.Options{
		HostKey:        hostKey,
		AuthorizedKeys: map[string]string{"root": login.Public + "\n", "deploy": login.Public + "\n"},
	})
	return &target{c: c, login: login, provider: sdktest.LaunchBinary(t, providerPackage)}
}

// conn are the connection inputs for user.
func (tg *target) conn(user string) map[string]any {
	return map[string]any{"address": tg.c.Address, "port": tg.c.Port, "user": user, "privateKey": tg.login.Private}
}

// systemInputs are nixos.system inputs for the container's key now.
func (tg *target) systemInputs(t *testing.T, user, toplevel string, extra map[string]any) map[string]any {
	t.Helper()
	in := tg.conn(user)
	in["hostPublicKey"] = tg.c.HostPublicKey(t)
	in["toplevel"] = toplevel
	for k, v := range extra {
		in[k] = v
	}
	return in
}

// create runs Create in the provider binary and returns the outputs and
// the error the diagnostics make (nil on success).
func (tg *target) create(t *testing.T, p *plugin.Client, typ string, inputs map[string]any) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	b, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Create(ctx, resource.CreateRequest{Type: typ, Name: "target", Inputs: resource.Values{JSON: b}}, nil)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", p.ExplainFailure(err))
	}
	if r.Diagnostics.HasError() {
		return nil, r.Diagnostics.Err()
	}
	var out map[string]any
	if err := json.Unmarshal(r.Outputs.JSON, &out); err != nil {
		t.Fatalf("decode outputs %s: %v", r.Outputs.JSON, err)
	}
	return out, nil
}

// deploy creates a nixos.system of toplevel as user and fails the test if
// that fails.
func (tg *target) deploy(t *testing.T, user, toplevel string, extra map[string]any) map[string]any {
	t.Helper()
	out, err := tg.create(t, tg.provider, systemType, tg.systemInputs(t, user, toplevel, extra))
	if err != nil {
		t.Fatalf("deploy %s as %s: %v", toplevel, user, err)
	}
	if got := tg.c.CurrentSystem(t); got != toplevel {
		t.Fatalf("after deploying %s the container runs %q", toplevel, got)
	}
	return out
}

// exec runs a script in the container and fails the test if it fails.
func (tg *target) exec(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := tg.c.Exec(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// supervisorStatus is the status file of the newest activation on the
// container ("" when none).
func (tg *target) supervisorStatus(t *testing.T) string {
	t.Helper()
	return tg.exec(t, `d=$(ls -td /run/landscaper/*/ 2>/dev/null | head -n 1); if [ -n "$d" ]; then cat "$d/status" 2>/dev/null; fi; true`)
}

// failedUnits lists the container's failed units.
func (tg *target) failedUnits(t *testing.T) string {
	t.Helper()
	return tg.exec(t, "systemctl list-units --state=failed --no-legend --plain")
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dial opens an SSH connection of the test's own to the container, pinned
// to hostKey.
func (tg *target) dial(t *testing.T, user, hostKey string) *remote.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := remote.Dial(ctx, remote.Target{Address: tg.c.Address, Port: tg.c.Port, User: user, PrivateKey: tg.login.Private, HostKey: hostKey})
	if err != nil {
		t.Fatalf("dial %s: %v", tg.c.Address, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// killProvider kills the provider's process group with SIGKILL, as the
// end of a killed engine does.
func killProvider(t *testing.T, p *plugin.Client) {
	t.Helper()
	pid := p.Pid()
	if pid == 0 {
		t.Fatal("the provider has no process")
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the provider (process group %d): %v", pid, err)
	}
}

// contains fails the test for each part missing from s.
func contains(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s does not say %q:\n%s", what, p, s)
		}
	}
}
