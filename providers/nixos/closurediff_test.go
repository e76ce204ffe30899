package nixos_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// diffJSON is the part of nixos.system's plan details the tests read.
type diffJSON struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Built      bool   `json:"built"`
	Derivation string `json:"derivation"`
	Unread     string `json:"unread"`
	Added      []struct {
		Name     string   `json:"name"`
		Versions []string `json:"versions"`
	} `json:"added"`
	Removed []struct {
		Name     string   `json:"name"`
		Versions []string `json:"versions"`
	} `json:"removed"`
	Changed []struct {
		Name   string   `json:"name"`
		Before []string `json:"before"`
		After  []string `json:"after"`
	} `json:"changed"`
	ClosureBytes int64    `json:"closureBytes"`
	ClosureDelta int64    `json:"closureDelta"`
	CopyPaths    int      `json:"copyPaths"`
	CopyBytes    int64    `json:"copyBytes"`
	RebootFor    []string `json:"rebootFor"`
	UnitsChanged []string `json:"unitsChanged"`
	UnitsAdded   []string `json:"unitsAdded"`
	UnitsRemoved []string `json:"unitsRemoved"`
}

// describedPlan plans as landscaper plan does: a person reads it.
func describedPlan(t *testing.T, f *fixture, prior *resource.State, inputs any, unknown ...resource.Path) *resource.PlanResponse {
	t.Helper()
	r, err := f.h.Provider.Plan(context.Background(), resource.PlanRequest{Type: systemType, Name: "test", Prior: prior, Desired: resource.Values{JSON: f.h.JSON(inputs)}, Unknown: unknown, Describe: true})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return r
}

func planDiff(t *testing.T, r *resource.PlanResponse) diffJSON {
	t.Helper()
	if r.Diagnostics.HasError() {
		t.Fatalf("plan: %v", r.Diagnostics.Err())
	}
	if r.Details == nil {
		t.Fatalf("plan of action %v has no details", r.Action)
	}
	var d diffJSON
	if err := json.Unmarshal(r.Details.JSON, &d); err != nil {
		t.Fatalf("details JSON: %v\n%s", err, r.Details.JSON)
	}
	return d
}

func names(list []struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
}) []string {
	var out []string
	for _, p := range list {
		out = append(out, p.Name+"-"+strings.Join(p.Versions, ","))
	}
	return out
}

// TestPlanShowsWhatChangesOnTheHost: a host runs a system; the plan of
// another one names the packages added, removed and changed, the kernel
// change (a reboot), the units that change and what must be copied;
// unbuilt and unreachable cases say so.
func TestPlanShowsWhatChangesOnTheHost(t *testing.T) {
	f := newFixture(t, testhost.Options{})
	oldSys := testhost.BuildSystem(t, testhost.System{
		Name:     "diff-old",
		Packages: []string{"hello-2.12", "curl-8.1.0", "gone-1.0", "openssl-3.0.13-bin"},
		Units:    map[string]string{"sshd.service": "ExecStart=sshd v1", "foo.service": "ExecStart=foo", "old.service": "x"},
		Kernel:   "linux-6.1.0",
	})
	newSys := testhost.BuildSystem(t, testhost.System{
		Name:     "diff-new",
		Packages: []string{"hello-2.12", "curl-8.2.1", "fresh-3.0", "openssl-3.0.14-bin"},
		Units:    map[string]string{"sshd.service": "ExecStart=sshd v2", "foo.service": "ExecStart=foo", "bar.service": "y"},
		Kernel:   "linux-6.2.0",
	})
	st, diags, _ := f.create(t, systemType, f.systemInputs(oldSys, nil))
	if diags.HasError() {
		t.Fatalf("create: %v", diags.Err())
	}

	r := describedPlan(t, f, st, f.systemInputs(newSys, nil))
	if r.Action != resource.ActionUpdate {
		t.Fatalf("action %v, want update", r.Action)
	}
	d := planDiff(t, r)
	if d.From != oldSys || d.To != newSys || !d.Built || d.Unread != "" {
		t.Errorf("from %q to %q built %v unread %q; want %q to %q, built, read", d.From, d.To, d.Built, d.Unread, oldSys, newSys)
	}
	if got, want := names(d.Added), []string{"fresh-3.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("added %q, want %q", got, want)
	}
	if got, want := names(d.Removed), []string{"gone-1.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("removed %q, want %q", got, want)
	}
	var changed []string
	for _, c := range d.Changed {
		changed = append(changed, c.Name+" "+strings.Join(c.Before, ",")+" -> "+strings.Join(c.After, ","))
	}
	if want := []string{"curl 8.1.0 -> 8.2.1", "linux 6.1.0 -> 6.2.0", "openssl 3.0.13 -> 3.0.14"}; !reflect.DeepEqual(changed, want) {
		t.Errorf("changed %q, want %q", changed, want)
	}
	if !reflect.DeepEqual(d.RebootFor, []string{"kernel"}) {
		t.Errorf("rebootFor %q, want [kernel]", d.RebootFor)
	}
	if !reflect.DeepEqual(d.UnitsChanged, []string{"sshd.service"}) || !reflect.DeepEqual(d.UnitsAdded, []string{"bar.service"}) || !reflect.DeepEqual(d.UnitsRemoved, []string{"old.service"}) {
		t.Errorf("units changed %q added %q removed %q; want [sshd.service] [bar.service] [old.service]", d.UnitsChanged, d.UnitsAdded, d.UnitsRemoved)
	}
	// The host holds the old closure only: the new toplevel, the changed
	// packages, kernel and units are to copy; hello and foo.service are
	// there already.
	if d.CopyPaths != 7 || d.CopyBytes <= 0 {
		t.Errorf("to copy: %d paths, %d bytes; want 7 paths (system, curl, fresh, openssl, kernel, sshd and bar units)", d.CopyPaths, d.CopyBytes)
	}
	if d.ClosureBytes <= 0 {
		t.Errorf("closure size %d", d.ClosureBytes)
	}
	for _, want := range []string{"packages: 1 added, 1 removed, 3 changed", "to copy: 7 paths", "reboot needed: kernel change", "3 units change"} {
		if !strings.Contains(r.Details.Summary, want) {
			t.Errorf("summary %q does not say %q", r.Details.Summary, want)
		}
	}
	lines := strings.Join(r.Details.Lines, "\n")
	for _, want := range []string{"[C] curl: 8.1.0 -> 8.2.1", "[A] fresh: 3.0", "[R] gone: 1.0", "units changed (restarted or reloaded if active): sshd.service"} {
		if !strings.Contains(lines, want) {
			t.Errorf("details do not say %q:\n%s", want, lines)
		}
	}
	if strings.Contains(r.Details.Summary+lines+string(r.Details.JSON), "PRIVATE KEY") {
		t.Errorf("the login key appears in the details")
	}

	t.Run("not built", func(t *testing.T) {
		unbuilt := "/nix/store/" + strings.Repeat("0", 32) + "-nixos-system-standin-unbuilt"
		d := planDiff(t, describedPlan(t, f, st, f.systemInputs(unbuilt, nil)))
		if d.Built || d.Derivation != "nixos-system-standin-unbuilt" {
			t.Errorf("built %v derivation %q; want not built, nixos-system-standin-unbuilt", d.Built, d.Derivation)
		}
	})
	t.Run("host unreachable", func(t *testing.T) {
		in := f.systemInputs(newSys, map[string]any{"port": testhost.FreePort(t)})
		d := planDiff(t, describedPlan(t, f, st, in))
		if !d.Built || d.Unread == "" || len(d.Added) != 5 {
			t.Errorf("built %v unread %q added %d; want built, the reason, every package added", d.Built, d.Unread, len(d.Added))
		}
	})
	t.Run("connection unknown", func(t *testing.T) {
		d := planDiff(t, describedPlan(t, f, nil, f.systemInputs(newSys, nil), resource.AttrPath("hostPublicKey")))
		if !d.Built || !strings.Contains(d.Unread, "known only after apply") {
			t.Errorf("built %v unread %q", d.Built, d.Unread)
		}
	})
	t.Run("not asked", func(t *testing.T) {
		if r := f.h.Plan(systemType, st, f.systemInputs(newSys, nil)); r.Action != resource.ActionUpdate || r.Details != nil {
			t.Errorf("action %v details %+v; want an update without details (no one reads this plan)", r.Action, r.Details)
		}
	})
	t.Run("installation", func(t *testing.T) {
		in := f.conn()
		in["hostPublicKey"] = f.host.HostPublicKey()
		in["toplevel"] = newSys
		in["diskoScript"] = buildCanary(t, "/run/disko-ran")
		r, err := f.h.Provider.Plan(context.Background(), resource.PlanRequest{Type: installType, Name: "test", Desired: resource.Values{JSON: f.h.JSON(in)}, Describe: true})
		if err != nil {
			t.Fatal(err)
		}
		d := planDiff(t, r)
		if !d.Built || len(d.Added) != 5 || d.CopyPaths == 0 || !strings.Contains(d.Unread, "new installation") {
			t.Errorf("install details: built %v, %d packages, %d paths to copy, unread %q; want built, 5, all, a new installation", d.Built, len(d.Added), d.CopyPaths, d.Unread)
		}
	})
	t.Run("no-op has no details", func(t *testing.T) {
		if r := describedPlan(t, f, st, f.systemInputs(oldSys, nil)); r.Action != resource.ActionNoop || r.Details != nil {
			t.Errorf("action %v details %+v; want a no-op without details", r.Action, r.Details)
		}
	})
}
