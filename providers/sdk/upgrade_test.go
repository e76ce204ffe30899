package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

// A host's schema went through two versions: version 1 renamed the
// output "addr" to "address", version 2 the input "name" to "hostname".
type hostInputs struct {
	Hostname string `json:"hostname"`
}

type hostOutputs struct {
	Address string `json:"address"`
	Token   string `json:"token"`
}

// hostSeen records what the hooks of hostType were given.
type hostSeen struct {
	steps []int
	prior []sdk.State[hostInputs, hostOutputs]
}

func renameAttr(m map[string]json.RawMessage, from, to string) {
	if v, ok := m[from]; ok {
		m[to] = v
		delete(m, from)
	}
}

func hostType(seen *hostSeen) *sdk.Type[hostInputs, hostOutputs] {
	return &sdk.Type[hostInputs, hostOutputs]{
		Inputs:  []sdk.Attr{sdk.String("hostname", "").Required()},
		Outputs: []sdk.Attr{sdk.String("address", ""), sdk.String("token", "").Sensitive()},
		Version: 2,
		Upgrade: func(_ context.Context, from int, prior sdk.RawState) (sdk.RawState, error) {
			seen.steps = append(seen.steps, from)
			switch from {
			case 0:
				renameAttr(prior.Outputs, "addr", "address")
			case 1:
				renameAttr(prior.Inputs, "name", "hostname")
			}
			return prior, nil
		},
		Create: func(_ context.Context, _ *sdk.Op, in hostInputs) (hostOutputs, error) {
			return hostOutputs{Address: "10.0.0.1", Token: "t0k3n"}, nil
		},
		Update: func(_ context.Context, _ *sdk.Op, prior sdk.State[hostInputs, hostOutputs], in hostInputs) (hostOutputs, error) {
			seen.prior = append(seen.prior, prior)
			return hostOutputs{Address: prior.Outputs.Address, Token: prior.Outputs.Token}, nil
		},
		Delete: func(_ context.Context, _ *sdk.Op, prior sdk.State[hostInputs, hostOutputs]) error {
			seen.prior = append(seen.prior, prior)
			return nil
		},
		Read: func(_ context.Context, prior sdk.State[hostInputs, hostOutputs]) (hostOutputs, bool, error) {
			seen.prior = append(seen.prior, prior)
			return prior.Outputs, true, nil
		},
		Prepare: func(_ context.Context, prior *sdk.State[hostInputs, hostOutputs], _ hostInputs) error {
			seen.prior = append(seen.prior, *prior)
			return nil
		},
	}
}

func hostProvider(seen *hostSeen) *sdk.Provider {
	return &sdk.Provider{Name: "hosts", Version: "1", Types: map[string]sdk.Resource{"host": hostType(seen)}}
}

// recordedHost is the same host as each schema version recorded it.
func recordedHost(version int64) *resource.State {
	in := map[int64]string{0: `{"name":"web"}`, 1: `{"name":"web"}`, 2: `{"hostname":"web"}`}[version]
	out := map[int64]string{0: `{"addr":"10.0.0.1","token":"t0k3n"}`}[version]
	if out == "" {
		out = `{"address":"10.0.0.1","token":"t0k3n"}`
	}
	return &resource.State{
		Inputs:        resource.Values{JSON: json.RawMessage(in)},
		Outputs:       resource.Values{JSON: json.RawMessage(out), Sensitive: []resource.Path{resource.AttrPath("token")}},
		SchemaVersion: version,
	}
}

func wantUpgradedHost(t *testing.T, what string, got sdk.State[hostInputs, hostOutputs]) {
	t.Helper()
	if want := (hostOutputs{Address: "10.0.0.1", Token: "t0k3n"}); got.Outputs != want || !got.HasOutputs {
		t.Errorf("%s saw the outputs %+v (has outputs %v), want %+v", what, got.Outputs, got.HasOutputs, want)
	}
	if got.Inputs.Hostname != "web" {
		t.Errorf("%s saw the inputs %+v, want hostname web", what, got.Inputs)
	}
}

func TestRecordedStateIsUpgradedBeforeTheHooksSeeIt(t *testing.T) {
	tests := []struct {
		recorded  int64
		wantSteps []int
	}{
		{recorded: 0, wantSteps: []int{0, 1}},
		{recorded: 1, wantSteps: []int{1}},
		{recorded: 2, wantSteps: nil},
	}
	desired := map[string]any{"hostname": "web"}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("recorded at version %d", tt.recorded), func(t *testing.T) {
			seen := &hostSeen{}
			h := sdktest.New(t, hostProvider(seen))

			p := h.Plan("hosts.host", recordedHost(tt.recorded), desired)
			if p.Diagnostics.HasError() || p.Action != resource.ActionNoop {
				t.Fatalf("plan: %v %v, want a no-op", p.Action, p.Diagnostics.Err())
			}
			var planned map[string]string
			if err := json.Unmarshal(p.PlannedOutputs, &planned); err != nil || planned["address"] != "10.0.0.1" {
				t.Errorf("planned outputs %s (%v), want the recorded addr as address", p.PlannedOutputs, err)
			}
			if fmt.Sprint(seen.steps) != fmt.Sprint(tt.wantSteps) {
				t.Errorf("upgrade steps of the plan: %v, want %v", seen.steps, tt.wantSteps)
			}

			r := h.Read("hosts.host", recordedHost(tt.recorded))
			if r.Diagnostics.HasError() || !r.Exists || r.SchemaVersion != 2 {
				t.Fatalf("read: exists %v, schema version %d, %v; want it at version 2", r.Exists, r.SchemaVersion, r.Diagnostics.Err())
			}
			wantUpgradedHost(t, "Read", seen.prior[len(seen.prior)-1])
			switch {
			case tt.recorded == 2 && r.UpgradedPrior != nil:
				t.Errorf("read of state at the type's version returned an upgraded prior: %+v", r.UpgradedPrior)
			case tt.recorded < 2 && r.UpgradedPrior == nil:
				t.Errorf("read of state at version %d returned no upgraded prior", tt.recorded)
			case tt.recorded < 2:
				if got := string(r.UpgradedPrior.Inputs.JSON); got != `{"hostname":"web"}` || r.UpgradedPrior.SchemaVersion != 2 {
					t.Errorf("upgraded prior: inputs %s at version %d, want {\"hostname\":\"web\"} at 2", got, r.UpgradedPrior.SchemaVersion)
				}
				if !resource.Covered(resource.AttrPath("token"), r.UpgradedPrior.Outputs.Sensitive) {
					t.Errorf("upgraded prior's token is not marked sensitive: %v", r.UpgradedPrior.Outputs.Sensitive)
				}
			}

			st, _ := h.Update("hosts.host", recordedHost(tt.recorded), desired)
			wantUpgradedHost(t, "Update", seen.prior[len(seen.prior)-1])
			if st.SchemaVersion != 2 {
				t.Errorf("state after update at schema version %d, want 2", st.SchemaVersion)
			}

			h.Delete("hosts.host", recordedHost(tt.recorded))
			wantUpgradedHost(t, "Delete", seen.prior[len(seen.prior)-1])

			prep, err := h.Provider.(resource.Preparer).Prepare(context.Background(), resource.PrepareRequest{Type: "hosts.host", Name: "test", Prior: recordedHost(tt.recorded), Inputs: resource.Values{JSON: h.JSON(desired)}})
			if err != nil || prep.HasError() {
				t.Fatalf("prepare: %v %v", err, prep.Err())
			}
			wantUpgradedHost(t, "Prepare", seen.prior[len(seen.prior)-1])
		})
	}
}

func TestCreateRecordsTheTypesVersion(t *testing.T) {
	h := sdktest.New(t, hostProvider(&hostSeen{}))
	st, _ := h.Create("hosts.host", map[string]any{"hostname": "web"})
	if st.SchemaVersion != 2 {
		t.Errorf("state after create at schema version %d, want 2", st.SchemaVersion)
	}
	schema, err := h.Provider.GetSchema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v := schema.Types["host"].Version; v != 2 {
		t.Errorf("schema version of hosts.host: %d, want 2", v)
	}
}

// TestUnreadableRecordedStateChangesNothing checks that state newer than
// the type knows, or that its Upgrade refuses, is an error of every
// operation, which keeps the recorded state as it was and calls no hook.
func TestUnreadableRecordedStateChangesNothing(t *testing.T) {
	tests := []struct {
		name     string
		recorded *resource.State
		failing  bool
		want     string
	}{
		{"newer than the type", recordedHost(3), false, "the recorded state of this hosts.host has schema version 3, newer than version 2, the newest this provider knows"},
		{"refused by Upgrade", recordedHost(0), true, "upgrade the recorded state of this hosts.host from schema version 0 to 1: no upgrade today"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := &hostSeen{}
			typ := hostType(seen)
			if tt.failing {
				typ.Upgrade = func(context.Context, int, sdk.RawState) (sdk.RawState, error) {
					return sdk.RawState{}, errors.New("no upgrade today")
				}
			}
			prov := &sdk.Provider{Name: "hosts", Version: "1", Types: map[string]sdk.Resource{"host": typ}}
			ctx := context.Background()
			desired := resource.Values{JSON: json.RawMessage(`{"hostname":"web"}`)}
			req := func() resource.State { return *recordedHost(tt.recorded.SchemaVersion) }

			plan, _ := prov.Plan(ctx, resource.PlanRequest{Type: "hosts.host", Name: "h", Prior: tt.recorded, Desired: desired})
			upd, _ := prov.Update(ctx, resource.UpdateRequest{Type: "hosts.host", Name: "h", Prior: req(), Inputs: desired}, resource.DiscardEvents{})
			del, _ := prov.Delete(ctx, resource.DeleteRequest{Type: "hosts.host", Name: "h", Prior: req()}, resource.DiscardEvents{})
			read, _ := prov.Read(ctx, resource.ReadRequest{Type: "hosts.host", Name: "h", Prior: req()})
			prep, _ := prov.Prepare(ctx, resource.PrepareRequest{Type: "hosts.host", Name: "h", Prior: tt.recorded, Inputs: desired})

			for op, diags := range map[string]resource.Diagnostics{"plan": plan.Diagnostics, "update": upd.Diagnostics, "delete": del.Diagnostics, "read": read.Diagnostics, "prepare": prep} {
				if err := diags.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %v, want one saying %q", op, err, tt.want)
				}
			}
			kept := map[string]*resource.Result{"update": upd, "delete": del}
			for op, res := range kept {
				if !res.HasState || string(res.Outputs.JSON) != string(tt.recorded.Outputs.JSON) || res.SchemaVersion != tt.recorded.SchemaVersion {
					t.Errorf("%s did not keep the recorded state: has %v, outputs %s at version %d", op, res.HasState, res.Outputs.JSON, res.SchemaVersion)
				}
			}
			if !read.Exists || string(read.Outputs.JSON) != string(tt.recorded.Outputs.JSON) || read.UpgradedPrior != nil {
				t.Errorf("read did not keep the recorded state: exists %v, outputs %s, upgraded %+v", read.Exists, read.Outputs.JSON, read.UpgradedPrior)
			}
			if len(seen.prior) > 0 {
				t.Errorf("hooks were called with unreadable state: %+v", seen.prior)
			}
		})
	}
}

func TestVersionDeclarationsAreChecked(t *testing.T) {
	upgrade := func(_ context.Context, _ int, s sdk.RawState) (sdk.RawState, error) { return s, nil }
	tests := []struct {
		name    string
		version int
		upgrade func(context.Context, int, sdk.RawState) (sdk.RawState, error)
		want    string
	}{
		{"a version without an upgrade", 1, nil, "it has Version above 0 but no Upgrade"},
		{"an upgrade without a version", 0, upgrade, "it has an Upgrade but Version 0"},
		{"a negative version", -1, upgrade, "its Version is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := hostType(&hostSeen{})
			typ.Version, typ.Upgrade = tt.version, tt.upgrade
			err := (&sdk.Provider{Name: "hosts", Types: map[string]sdk.Resource{"host": typ}}).Check()
			if err == nil || !strings.Contains(err.Error(), "resource type hosts.host: "+tt.want) {
				t.Errorf("Check: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
