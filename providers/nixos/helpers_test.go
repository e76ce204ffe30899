package nixos_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

const (
	hostKeyType = "nixos.host-key"
	systemType  = "nixos.system"
	installType = "nixos.install"
)

type keyPair = testhost.KeyPair

func newKeyPair(t *testing.T) keyPair { return testhost.NewKeyPair(t) }

// fixture is a stand-in host with a login key authorised on it.
type fixture struct {
	host  *testhost.Host
	login keyPair
	h     *sdktest.Harness
}

func newFixture(t *testing.T, opts testhost.Options) *fixture {
	t.Helper()
	login := newKeyPair(t)
	opts.AuthorizedKeys += login.Public + "\n"
	users := make([]testhost.User, len(opts.Users))
	for i, u := range opts.Users {
		u.AuthorizedKeys += login.Public + "\n"
		users[i] = u
	}
	opts.Users = users
	return &fixture{host: testhost.Start(t, opts), login: login, h: sdktest.New(t, nixos.Provider())}
}

func (f *fixture) conn() map[string]any {
	return map[string]any{"address": f.host.Address, "port": f.host.Port, "privateKey": f.login.Private}
}

// connAs is conn logging in as user.
func (f *fixture) connAs(user string) map[string]any {
	c := f.conn()
	c["user"] = user
	return c
}

// systemInputs are nixos.system inputs for the host pinned to its key now.
func (f *fixture) systemInputs(toplevel string, extra map[string]any) map[string]any {
	in := f.conn()
	in["hostPublicKey"] = f.host.HostPublicKey()
	in["toplevel"] = toplevel
	for k, v := range extra {
		in[k] = v
	}
	return in
}

// create calls Create and returns the state (nil on failure) and the
// error diagnostics.
func (f *fixture) create(t *testing.T, typ string, inputs any) (*resource.State, resource.Diagnostics, *sdktest.Events) {
	t.Helper()
	ev := &sdktest.Events{}
	in := resource.Values{JSON: f.h.JSON(inputs)}
	r, err := f.h.Provider.Create(context.Background(), resource.CreateRequest{Type: typ, Name: "test", Inputs: in}, ev)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if r.Diagnostics.HasError() {
		return nil, r.Diagnostics, ev
	}
	return &resource.State{Inputs: in, Outputs: r.Outputs, Private: r.Private}, nil, ev
}

// update calls Update and returns the new state and the error diagnostics.
func (f *fixture) update(t *testing.T, typ string, prior *resource.State, inputs any) (*resource.State, resource.Diagnostics, *sdktest.Events) {
	t.Helper()
	ev := &sdktest.Events{}
	in := resource.Values{JSON: f.h.JSON(inputs)}
	r, err := f.h.Provider.Update(context.Background(), resource.UpdateRequest{Type: typ, Name: "test", Prior: *prior, Inputs: in}, ev)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if r.Diagnostics.HasError() {
		return prior, r.Diagnostics, ev
	}
	return &resource.State{Inputs: in, Outputs: r.Outputs, Private: r.Private}, nil, ev
}

func outputString(t *testing.T, s *resource.State, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(s.Outputs.JSON, &m); err != nil {
		t.Fatalf("decode outputs: %v", err)
	}
	v, _ := m[name].(string)
	return v
}

func countLines(lines []string, substr string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
