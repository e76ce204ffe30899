package nixos_test

import (
	"context"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, nixos.Provider())
	key := newKeyPair(t)
	store := "/nix/store/1i3zb5h85cxr2d013x8i9009gr21dmn0-nixos-system-x"
	sys := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"address": "10.0.0.5", "privateKey": key.Private, "hostPublicKey": key.Public, "toplevel": store}
		mod(m)
		return m
	}
	hk := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"address": "10.0.0.5", "privateKey": key.Private, "expectedHostKey": key.Public}
		mod(m)
		return m
	}
	inst := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"address": "10.0.0.5", "privateKey": key.Private, "hostPublicKey": key.Public, "toplevel": store, "diskoScript": store + "/bin/disko"}
		mod(m)
		return m
	}
	cases := []struct {
		name, typ string
		inputs    map[string]any
		path      string
		want      string
	}{
		{"valid system", systemType, sys(func(map[string]any) {}), "", ""},
		{"valid host-key", hostKeyType, hk(func(map[string]any) {}), "", ""},
		{"bad action", systemType, sys(func(m map[string]any) { m["action"] = "dry-activate" }), "action", `must be "switch", "test" or "boot"`},
		{"toplevel not in store", systemType, sys(func(m map[string]any) { m["toplevel"] = "/etc/nixos" }), "toplevel", "must be a store path"},
		{"toplevel with quote", systemType, sys(func(m map[string]any) { m["toplevel"] = store + "'x" }), "toplevel", "must be a store path"},
		{"pinned key garbage", systemType, sys(func(m map[string]any) { m["hostPublicKey"] = "not a key" }), "hostPublicKey", "OpenSSH public key"},
		{"private key garbage", systemType, sys(func(m map[string]any) { m["privateKey"] = "secret-garbage" }), "privateKey", "private key"},
		{"port out of range", systemType, sys(func(m map[string]any) { m["port"] = 70000 }), "port", "1 to 65535"},
		{"user with space", systemType, sys(func(m map[string]any) { m["user"] = "a b" }), "user", "login name"},
		{"health check typo", systemType, sys(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"comand": "true"}} }), "healthChecks[0].comand", "not an attribute of healthChecks[0]"},
		{"health check empty", systemType, sys(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"timeout": 3}} }), "healthChecks[0]", "needs command"},
		{"health check both", systemType, sys(func(m map[string]any) {
			m["healthChecks"] = []any{map[string]any{"command": "true", "url": "http://x/"}}
		}), "healthChecks[0]", "not both"},
		{"health check bad url", systemType, sys(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"url": "ftp://x/"}} }), "healthChecks[0].url", "http://"},
		{"health check retries", systemType, sys(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"command": "true", "retries": 1.5}} }), "healthChecks[0].retries", "whole number"},
		{"health check timeout out of range", systemType, sys(func(m map[string]any) {
			m["healthChecks"] = []any{map[string]any{"command": "true"}, map[string]any{"command": "true", "timeout": 0}}
		}), "healthChecks[1].timeout", "from 0.1 to 3600"},
		{"health check command not a string", systemType, sys(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"command": 3}} }), "healthChecks[0].command", "expected string"},
		{"health check valid", systemType, sys(func(m map[string]any) {
			m["healthChecks"] = []any{map[string]any{"url": "https://x/health", "timeout": 0.5, "retries": 0, "interval": 0}}
		}), "", ""},
		{"confirm timeout zero", systemType, sys(func(m map[string]any) { m["confirmTimeout"] = 0 }), "confirmTimeout", "more than 0"},
		{"host key path relative", hostKeyType, hk(func(m map[string]any) { m["hostKeyPath"] = "etc/ssh/key" }), "hostKeyPath", "absolute"},
		{"boot record relative", hostKeyType, hk(func(m map[string]any) { m["bootRecord"] = "boot/fetched/x" }), "bootRecord", "absolute"},
		{"installation record relative", hostKeyType, hk(func(m map[string]any) { m["bootInstalledRecord"] = "boot/installed/x.json" }), "bootInstalledRecord", "absolute"},
		{"install's installation record relative", installType, inst(func(m map[string]any) { m["bootInstalledRecord"] = "installed/x.json" }), "bootInstalledRecord", "absolute"},
		{"expected key garbage", hostKeyType, hk(func(m map[string]any) { m["expectedHostKey"] = "ssh-ed25519 !!" }), "expectedHostKey", "OpenSSH public key"},
		{"bad reboot", systemType, sys(func(m map[string]any) { m["reboot"] = "sometimes" }), "reboot", `"never", "ifNeeded" or "always"`},
		{"reboot with action test", systemType, sys(func(m map[string]any) { m["reboot"] = "ifNeeded"; m["action"] = "test" }), "reboot", `use action "switch" or "boot"`},
		{"valid install", installType, inst(func(map[string]any) {}), "", ""},
		{"disk script outside the store", installType, inst(func(m map[string]any) { m["diskoScript"] = "/usr/bin/disko" }), "diskoScript", "store path of an executable"},
		{"disk script with a dotdot", installType, inst(func(m map[string]any) { m["diskoScript"] = store + "/../x/bin/disko" }), "diskoScript", "store path of an executable"},
		{"extra file relative", installType, inst(func(m map[string]any) {
			m["extraFiles"] = map[string]any{"etc/secret": map[string]any{"contents": "x"}}
		}), `extraFiles."etc/secret"`, "clean absolute path"},
		{"extra file bad mode", installType, inst(func(m map[string]any) {
			m["extraFiles"] = map[string]any{"/etc/secret": map[string]any{"contents": "x", "mode": "rw"}}
		}), `extraFiles."/etc/secret".mode`, "mode"},
		{"install reboot timeout", installType, inst(func(m map[string]any) { m["rebootTimeout"] = -1 }), "rebootTimeout", "more than 0"},
		{"missing address", hostKeyType, hk(func(m map[string]any) { delete(m, "address") }), "address", "must be set"},
		{"IPv6 loopback", hostKeyType, hk(func(m map[string]any) { m["address"] = "::1" }), "", ""},
		{"IPv6 address", systemType, sys(func(m map[string]any) { m["address"] = "2001:db8::5" }), "", ""},
		{"IPv4-mapped IPv6 address", installType, inst(func(m map[string]any) { m["address"] = "::ffff:10.0.0.5" }), "", ""},
		{"bracketed IPv6 address", hostKeyType, hk(func(m map[string]any) { m["address"] = "[::1]" }), "address", `without brackets: write "::1", not "[::1]"`},
		{"bracketed IPv6 address and port", systemType, sys(func(m map[string]any) { m["address"] = "[2001:db8::5]:22" }), "address", "without brackets or a port"},
		{"IPv4 address and port", installType, inst(func(m map[string]any) { m["address"] = "10.0.0.5:22" }), "address", "has a colon but is not an IPv6 address"},
		{"IPv6 address with a zone", systemType, sys(func(m map[string]any) { m["address"] = "fe80::1%eth0" }), "address", "has a zone"},
		{"bracketed IPv6 address with a zone", hostKeyType, hk(func(m map[string]any) { m["address"] = "[fe80::1%25eth0]" }), "address", "has a zone"},
		{"URL as address", hostKeyType, hk(func(m map[string]any) { m["address"] = "ssh://10.0.0.5" }), "address", "host name or IP address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: tc.typ, Name: "test", Inputs: resource.Values{JSON: h.JSON(tc.inputs)}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if diags.HasError() {
					t.Fatalf("valid inputs refused: %v", diags.Err())
				}
				return
			}
			found := false
			for _, d := range diags {
				if d.Severity == resource.SeverityError && d.Attribute.String() == tc.path && strings.Contains(d.String(), tc.want) {
					found = true
				}
				if strings.Contains(d.String(), "secret-garbage") || strings.Contains(d.String(), "PRIVATE KEY") {
					t.Errorf("diagnostic shows the private key: %v", d)
				}
			}
			if !found {
				t.Errorf("no error at %s saying %q; got %v", tc.path, tc.want, diags)
			}
		})
	}
	// Unknown inputs are not judged.
	diags, _ := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: systemType, Name: "test",
		Inputs:  resource.Values{JSON: h.JSON(map[string]any{"address": "10.0.0.5", "privateKey": "", "hostPublicKey": "", "toplevel": ""})},
		Unknown: []resource.Path{resource.AttrPath("privateKey"), resource.AttrPath("hostPublicKey"), resource.AttrPath("toplevel")}})
	if diags.HasError() {
		t.Errorf("unknown inputs judged: %v", diags.Err())
	}
	// A health check's url that is not known yet is not judged either.
	diags, _ = h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: systemType, Name: "test",
		Inputs:  resource.Values{JSON: h.JSON(sys(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"url": nil}} }))},
		Unknown: []resource.Path{resource.AttrPath("healthChecks").Index(0).Attr("url")}})
	if diags.HasError() {
		t.Errorf("unknown inputs judged: %v", diags.Err())
	}
}
