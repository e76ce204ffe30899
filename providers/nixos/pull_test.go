package nixos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

const pullType = "nixos.pull"

func TestValidatePull(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, nixos.Provider())
	key := newKeyPair(t)
	store := "/nix/store/1i3zb5h85cxr2d013x8i9009gr21dmn0-nixos-system-x"
	in := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"pullDir": "/var/lib/landscaper/pull", "hostPublicKey": key.Public, "toplevel": store}
		mod(m)
		return m
	}
	const secretText = "s3cret-value-42"
	for _, tc := range []struct {
		name   string
		inputs map[string]any
		path   string
		want   string
	}{
		{"valid", in(func(map[string]any) {}), "", ""},
		{"rsa host key", in(func(m map[string]any) {
			m["hostPublicKey"] = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"
		}), "hostPublicKey", "ed25519"},
		{"toplevel outside the store", in(func(m map[string]any) { m["toplevel"] = "/etc/nixos" }), "toplevel", "must be a store path"},
		{"empty pull dir", in(func(m map[string]any) { m["pullDir"] = "" }), "pullDir", "pullDir must name"},
		{"secret in the store", in(func(m map[string]any) {
			m["secrets"] = map[string]any{"/nix/store/x-key": map[string]any{"contents": secretText}}
		}), `secrets."/nix/store/x-key"`, "never written under /nix"},
		{"secret path relative", in(func(m map[string]any) {
			m["secrets"] = map[string]any{"keys/db": map[string]any{"contents": secretText}}
		}), `secrets."keys/db"`, "absolute"},
		{"secret mode setuid", in(func(m map[string]any) {
			m["secrets"] = map[string]any{"/run/keys/db": map[string]any{"contents": secretText, "mode": "4755"}}
		}), `secrets."/run/keys/db".mode`, "only permission bits"},
		{"health check typo", in(func(m map[string]any) { m["healthChecks"] = []any{map[string]any{"comand": "true"}} }), "healthChecks[0].comand", "is not an attribute of healthChecks[0]"},
		{"wait timeout zero", in(func(m map[string]any) { m["waitTimeout"] = 0 }), "waitTimeout", "more than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: pullType, Name: "test", Inputs: resource.Values{JSON: h.JSON(tc.inputs)}})
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
				if strings.Contains(d.String(), secretText) {
					t.Errorf("diagnostic shows the secret: %v", d)
				}
			}
			if !found {
				t.Errorf("no error at %s saying %q; got %v", tc.path, tc.want, diags)
			}
		})
	}
}

// TestPullPublishesReadsAndForgets drives nixos.pull through the SDK
// harness: generations count up, secrets are sealed, Read takes the
// host's reports and the plan turns a rolled-back generation into an
// update; Delete removes the host.
func TestPullPublishesReadsAndForgets(t *testing.T) {
	h := sdktest.New(t, nixos.Provider())
	host := newKeyPair(t)
	sys := testhost.BuildSystem(t, testhost.System{Name: "pull-provider"})
	dir := pulldir.Dir{Path: t.TempDir()}
	const secretText = "provider-secret-9d2e"
	inputs := map[string]any{"pullDir": dir.Path, "hostPublicKey": host.Public, "toplevel": sys,
		"secrets": map[string]any{"/run/keys/x": map[string]any{"contents": secretText, "mode": "0440"}}}
	st, ev := h.Create(pullType, inputs)
	var out map[string]any
	if err := json.Unmarshal(st.Outputs.JSON, &out); err != nil {
		t.Fatal(err)
	}
	key, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(host.Public))
	id := pulldir.HostID(key)
	if out["generation"] != float64(1) || out["status"] != "pending" || out["hostId"] != id {
		t.Fatalf("outputs %v", out)
	}
	for _, l := range ev.Logs {
		if strings.Contains(l, secretText) {
			t.Fatalf("a log line shows the secret: %s", l)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir.Path, "hosts", id, "desired.json"))
	if err != nil || strings.Contains(string(raw), secretText) || !strings.Contains(string(raw), "AGE ENCRYPTED FILE") {
		t.Fatalf("desired.json holds the secret in clear or not sealed (%v):\n%s", err, raw)
	}
	if target, err := os.Readlink(dir.SystemRoot(id)); err != nil || target != sys {
		t.Fatalf("GC root %s -> %q (%v), want %s", dir.SystemRoot(id), target, err, sys)
	}
	st, _ = h.Update(pullType, st, inputs)
	if err := json.Unmarshal(st.Outputs.JSON, &out); err != nil || out["generation"] != float64(2) {
		t.Fatalf("after update: %v %v", out, err)
	}

	if err := dir.AddReport(id, pulldir.Report{Generation: 2, Toplevel: sys, Current: "/nix/store/00000000000000000000000000000000-old", Result: pulldir.ResultRolledBack, Reason: "a health check failed"}); err != nil {
		t.Fatal(err)
	}
	read := h.Read(pullType, st)
	if err := json.Unmarshal(read.Outputs.JSON, &out); err != nil || out["status"] != "rolled-back" || out["current"] != "/nix/store/00000000000000000000000000000000-old" {
		t.Fatalf("read: %v %v", out, err)
	}
	refreshed := &resource.State{Inputs: st.Inputs, Outputs: read.Outputs}
	plan := h.Plan(pullType, refreshed, inputs)
	if plan.Action != resource.ActionUpdate || !strings.Contains(fmt.Sprint(plan.Diagnostics), "does not run its published system") {
		t.Fatalf("plan after a rollback: %v %v", plan.Action, plan.Diagnostics)
	}

	h.Delete(pullType, st)
	if dir.Known(id) {
		t.Fatal("the host is still in the pull directory after delete")
	}
}

func TestValidatePullRole(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, nixos.Provider())
	store := "/nix/store/1i3zb5h85cxr2d013x8i9009gr21dmn0-nixos-system-x"
	const token = "a-good-enrollment-token-0123"
	in := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"pullDir": "/var/lib/landscaper/pull", "role": "web", "toplevel": store, "enrollToken": token}
		mod(m)
		return m
	}
	for _, tc := range []struct {
		name   string
		inputs map[string]any
		path   string
		want   string
	}{
		{"valid", in(func(map[string]any) {}), "", ""},
		{"role with a slash", in(func(m map[string]any) { m["role"] = "web/../db" }), "role", "want 1 to 63"},
		{"role in capitals", in(func(m map[string]any) { m["role"] = "Web" }), "role", "want 1 to 63"},
		{"short token", in(func(m map[string]any) { m["enrollToken"] = "short-token" }), "enrollToken", "at least 16 characters"},
		{"token with a newline", in(func(m map[string]any) { m["enrollToken"] = token + "\n" }), "enrollToken", "no surrounding white space"},
		{"toplevel outside the store", in(func(m map[string]any) { m["toplevel"] = "/etc/nixos" }), "toplevel", "must be a store path"},
		{"batch of none", in(func(m map[string]any) { m["batchSize"] = 0 }), "batchSize", ""},
		{"negative budget", in(func(m map[string]any) { m["maxFailures"] = -1 }), "maxFailures", ""},
		{"gone at once", in(func(m map[string]any) { m["goneAfter"] = 0 }), "goneAfter", "more than 0"},
		{"secret in the store", in(func(m map[string]any) {
			m["secrets"] = map[string]any{"/nix/store/x-key": map[string]any{"contents": "v"}}
		}), `secrets."/nix/store/x-key"`, "never written under /nix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: "nixos.pull-role", Name: "test", Inputs: resource.Values{JSON: h.JSON(tc.inputs)}})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diags {
				if strings.Contains(d.String(), "short-token") || strings.Contains(d.String(), token) {
					t.Errorf("diagnostic shows the token: %v", d)
				}
			}
			if tc.path == "" {
				if diags.HasError() {
					t.Fatalf("valid inputs refused: %v", diags.Err())
				}
				return
			}
			for _, d := range diags {
				if d.Severity == resource.SeverityError && d.Attribute.String() == tc.path && strings.Contains(d.String(), tc.want) {
					return
				}
			}
			t.Errorf("no error at %s saying %q; got %v", tc.path, tc.want, diags)
		})
	}
}
