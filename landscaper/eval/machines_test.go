package eval

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// machineTypes are the types the machines module uses, with their outputs.
func machineTypes() Types {
	return Types{
		"ssh-keypair": {"keypair": {"publicKey", "privateKey", "fingerprint"}},
		"pxe-nbp":     {"entry": {"fetchRecord", "installedRecord"}},
		"nixos":       {"host-key": {"hostPublicKey"}, "install": {"hostPublicKey"}, "system": {"toplevel"}},
	}
}

// TestMachinesModule: landscaper.modules.machines declares, for each
// machine, the members of the installation flow in a group named after
// it (install only with a disk script), wired to each other's outputs
// only by passing them through, and the rollout `machines` over the
// systems.
func TestMachinesModule(t *testing.T) {
	ctx := t.Context()
	e, err := New(Source{File: filepath.Join("testdata", "machines", "landscaper.nix")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })

	members, _, err := e.Structure(ctx, StructureRequest{Types: machineTypes()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range members {
		got[m.Path] = m.Type
	}
	want := map[string]string{
		"db.deployKey": "ssh-keypair.keypair", "db.installerHostKey": "ssh-keypair.keypair", "db.netboot": "pxe-nbp.entry",
		"db.hostKey": "nixos.host-key", "db.install": "nixos.install", "db.system": "nixos.system",
		"web.deployKey": "ssh-keypair.keypair", "web.installerHostKey": "ssh-keypair.keypair", "web.netboot": "pxe-nbp.entry",
		"web.hostKey": "nixos.host-key", "web.system": "nixos.system",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}

	res, err := e.Evaluate(ctx, Request{Types: machineTypes(), Twice: true})
	if err != nil {
		t.Fatal(err)
	}
	var keys []Key
	for path, typ := range want {
		provider, name, _ := strings.Cut(typ, ".")
		for _, o := range machineTypes()[provider][name] {
			keys = append(keys, Key{path, o})
		}
	}
	tokens := e.Tokens(keys)
	wantDeps := map[string][]Key{
		"web.netboot": {{"web.deployKey", "publicKey"}, {"web.installerHostKey", "privateKey"}},
		"web.hostKey": {{"web.deployKey", "privateKey"}, {"web.installerHostKey", "publicKey"}, {"web.netboot", "fetchRecord"}},
		"web.system":  {{"web.deployKey", "privateKey"}, {"web.hostKey", "hostPublicKey"}},
		"db.hostKey":  {{"db.deployKey", "privateKey"}, {"db.installerHostKey", "publicKey"}, {"db.netboot", "fetchRecord"}, {"db.netboot", "installedRecord"}},
		"db.install":  {{"db.deployKey", "privateKey"}, {"db.deployKey", "publicKey"}, {"db.hostKey", "hostPublicKey"}, {"db.netboot", "installedRecord"}},
		"db.system":   {{"db.deployKey", "privateKey"}, {"db.install", "hostPublicKey"}},
	}
	inputs := map[string]map[string]any{}
	for _, m := range res.Members {
		a, err := tokens.Analyze(m.Inputs, res.Second[m.Path], true)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Opaque) > 0 {
			t.Errorf("%s computes with %v; the module only passes outputs through", m.Path, a.Opaque)
		}
		if want, ok := wantDeps[m.Path]; ok {
			deps := slices.Clone(a.Deps)
			slices.SortFunc(deps, func(x, y Key) int { return strings.Compare(x.String(), y.String()) })
			if !reflect.DeepEqual(deps, want) {
				t.Errorf("%s depends on %v, want %v", m.Path, deps, want)
			}
		}
		var in map[string]any
		if err := json.Unmarshal([]byte(m.Inputs), &in); err != nil {
			t.Fatal(err)
		}
		inputs[m.Path] = in
	}
	for _, c := range []struct {
		member, input string
		want          any
	}{
		{"web.netboot", "mac", "52:54:00:00:00:01"},
		{"web.netboot", "bootDir", "/srv/boot"},
		{"web.netboot", "cmdline", "console=ttyS0"},
		{"db.netboot", "initrd", []any{}},
		{"web.hostKey", "bootInstalledRecord", ""},
		{"db.hostKey", "port", 2222.0},
		{"web.system", "toplevel", "/nix/store/00000000000000000000000000000000-web"},
		{"db.install", "diskoScript", "/nix/store/00000000000000000000000000000000-disko"},
		{"db.install", "toplevel", "/nix/store/00000000000000000000000000000000-db"},
		{"db.system", "reboot", "ifNeeded"},
		{"db.system", "healthChecks", []any{map[string]any{"command": "true"}}},
		{"web.system", "reboot", "never"},
	} {
		if got := inputs[c.member][c.input]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s's %s is %#v, want %#v", c.member, c.input, got, c.want)
		}
	}

	d, err := e.Declarations(ctx, machineTypes())
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Rollouts["machines"]; !slices.Equal(r.Members, []string{"db.system", "web.system"}) || r.BatchSize != 2 || len(d.Rollouts) != 1 {
		t.Errorf("rollouts %+v, want machines over db.system and web.system, 2 at a time", d.Rollouts)
	}
}
