package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

type warnInputs struct {
	Password string `json:"password"`
	Fail     bool   `json:"fail"`
}

type warnOutputs struct {
	Length int `json:"length"`
}

// warningProvider's operations warn, naming the password (which is
// sensitive, so the warning must not show it), and fail when told to.
func warningProvider() *sdk.Provider {
	warn := func(op *sdk.Op, in warnInputs) (warnOutputs, error) {
		op.Warn(resource.AttrPath("password"), "weak password", "%q is short", in.Password)
		op.Warn(nil, "deprecated", "this type goes away in version 2")
		if in.Fail {
			return warnOutputs{}, errors.New("told to fail")
		}
		return warnOutputs{Length: len(in.Password)}, nil
	}
	return &sdk.Provider{Name: "warner", Version: "1", Types: map[string]sdk.Resource{
		"thing": &sdk.Type[warnInputs, warnOutputs]{
			Inputs:  []sdk.Attr{sdk.String("password", "").Sensitive().ForceNew(), sdk.Bool("fail", "")},
			Outputs: []sdk.Attr{sdk.Integer("length", "")},
			Create:  func(_ context.Context, op *sdk.Op, in warnInputs) (warnOutputs, error) { return warn(op, in) },
			Update: func(_ context.Context, op *sdk.Op, _ sdk.State[warnInputs, warnOutputs], in warnInputs) (warnOutputs, error) {
				return warn(op, in)
			},
			Delete: func(_ context.Context, op *sdk.Op, prior sdk.State[warnInputs, warnOutputs]) error {
				op.Warn(nil, "left behind", "a backup of %s", prior.Inputs.Password)
				return nil
			},
		},
	}}
}

func TestWarningsOfOperationsReachTheEngine(t *testing.T) {
	const secret = "hunter22"
	h := sdktest.New(t, warningProvider())
	inputs := func(fail bool) resource.Values {
		return resource.Values{JSON: h.JSON(warnInputs{Password: secret, Fail: fail}), Sensitive: []resource.Path{resource.AttrPath("password")}}
	}
	prior := resource.State{Inputs: inputs(false), Outputs: resource.Values{JSON: json.RawMessage(`{"length":8}`)}}
	ctx := context.Background()
	tests := []struct {
		name      string
		call      func() (*resource.Result, error)
		wantError bool
		want      []string // the warnings, as Diagnostic.String
	}{
		{name: "create", call: func() (*resource.Result, error) {
			return h.Provider.Create(ctx, resource.CreateRequest{Type: "warner.thing", Name: "m", Inputs: inputs(false)}, resource.DiscardEvents{})
		}, want: []string{`password: weak password: "(sensitive)" is short`, "deprecated: this type goes away in version 2"}},
		{name: "failed create", call: func() (*resource.Result, error) {
			return h.Provider.Create(ctx, resource.CreateRequest{Type: "warner.thing", Name: "m", Inputs: inputs(true)}, resource.DiscardEvents{})
		}, wantError: true, want: []string{`password: weak password: "(sensitive)" is short`, "deprecated: this type goes away in version 2"}},
		{name: "update", call: func() (*resource.Result, error) {
			return h.Provider.Update(ctx, resource.UpdateRequest{Type: "warner.thing", Name: "m", Prior: prior, Inputs: inputs(false)}, resource.DiscardEvents{})
		}, want: []string{`password: weak password: "(sensitive)" is short`, "deprecated: this type goes away in version 2"}},
		{name: "failed update", call: func() (*resource.Result, error) {
			return h.Provider.Update(ctx, resource.UpdateRequest{Type: "warner.thing", Name: "m", Prior: prior, Inputs: inputs(true)}, resource.DiscardEvents{})
		}, wantError: true, want: []string{`password: weak password: "(sensitive)" is short`, "deprecated: this type goes away in version 2"}},
		{name: "delete", call: func() (*resource.Result, error) {
			return h.Provider.Delete(ctx, resource.DeleteRequest{Type: "warner.thing", Name: "m", Prior: prior}, resource.DiscardEvents{})
		}, want: []string{"left behind: a backup of (sensitive)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if res.Diagnostics.HasError() != tt.wantError {
				t.Errorf("error diagnostics %v, want an error: %v", res.Diagnostics, tt.wantError)
			}
			var warnings []string
			for _, d := range res.Diagnostics {
				if strings.Contains(d.String(), secret) {
					t.Errorf("a diagnostic shows the secret: %s", d)
				}
				if d.Severity == resource.SeverityWarning {
					warnings = append(warnings, d.String())
				}
			}
			if strings.Join(warnings, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings\n%s\nwant\n%s", strings.Join(warnings, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
