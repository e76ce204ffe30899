package sdk_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

type probe struct {
	Command string  `json:"command"`
	Timeout float64 `json:"timeout"`
	Retries int     `json:"retries"`
	Token   string  `json:"token"`
}

type volume struct {
	Size int    `json:"size"`
	Mode string `json:"mode"`
}

type nestedInputs struct {
	Probes  []probe           `json:"probes"`
	Volumes map[string]volume `json:"volumes"`
}

func probeAttrs() []sdk.Attr {
	return []sdk.Attr{
		sdk.String("command", "What to run.").Required(),
		sdk.Number("timeout", "Seconds.").Default(10),
		sdk.Integer("retries", "Tries after the first.").Default(3),
		sdk.String("token", "A secret the command is given.").Sensitive().Default(""),
	}
}

// nestedProvider has one type with a list and a map of objects; its create
// reports what it decoded and logs each probe's token (which the SDK must
// redact: the token is declared sensitive).
func nestedProvider(decoded chan<- nestedInputs) *sdk.Provider {
	return &sdk.Provider{Name: "nested", Version: "1", Types: map[string]sdk.Resource{
		"thing": &sdk.Type[nestedInputs, struct{}]{
			Inputs: []sdk.Attr{
				sdk.ListOfObjects("probes", "Checks, in order.", probeAttrs()...).Default([]any{}),
				sdk.MapOfObjects("volumes", "Volumes by name.",
					sdk.Integer("size", "GiB.").Required(),
					sdk.String("mode", "Permission bits.").Default("0755"),
				).Default(map[string]any{}),
			},
			Create: func(_ context.Context, op *sdk.Op, in nestedInputs) (struct{}, error) {
				for _, p := range in.Probes {
					op.Logf("probe %s with token %s", p.Command, p.Token)
				}
				if decoded != nil {
					decoded <- in
				}
				return struct{}{}, nil
			},
		},
	}}
}

func TestNestedObjectsAreCheckedWithTheirPaths(t *testing.T) {
	h := sdktest.New(t, nestedProvider(nil))
	tests := []struct {
		name      string
		inputs    string
		unknown   []resource.Path
		wantPaths []string // the errors' attribute paths, in order; none for no error
		wantText  string   // part of the first error
	}{
		{name: "valid", inputs: `{"probes":[{"command":"true"},{"command":"x","timeout":2.5}],"volumes":{"data":{"size":3}}}`},
		{name: "unknown attribute of an element", inputs: `{"probes":[{"command":"true"},{"comand":"x"}]}`,
			wantPaths: []string{"probes[1].comand", "probes[1].command"}, wantText: `"comand" is not an attribute of probes[1]; known attributes: command, timeout, retries, token`},
		{name: "missing required attribute", inputs: `{"probes":[{"timeout":1}]}`, wantPaths: []string{"probes[0].command"}, wantText: "must be set"},
		{name: "wrong type in an element", inputs: `{"probes":[{"command":"true"},{"command":"true","timeout":"soon"}]}`,
			wantPaths: []string{"probes[1].timeout"}, wantText: "expected number, got a string"},
		{name: "fraction for an integer", inputs: `{"probes":[{"command":"true","retries":1.5}]}`, wantPaths: []string{"probes[0].retries"}, wantText: "not a whole number"},
		{name: "element not a set", inputs: `{"probes":["true"]}`, wantPaths: []string{"probes[0]"}, wantText: "wrong type: expected an attribute set, got a string"},
		{name: "list not a list", inputs: `{"probes":{"command":"true"}}`, wantPaths: []string{"probes"}, wantText: "expected list(object)"},
		{name: "map value", inputs: `{"volumes":{"data":{"size":3,"mdoe":"0700"}}}`, wantPaths: []string{`volumes.data.mdoe`}, wantText: "not an attribute of volumes.data"},
		{name: "map value missing", inputs: `{"volumes":{"logs":{}}}`, wantPaths: []string{`volumes.logs.size`}},
		{name: "unknown element is not judged", inputs: `{"probes":[null]}`, unknown: []resource.Path{resource.AttrPath("probes").Index(0)}},
		{name: "unknown attribute value is not judged", inputs: `{"probes":[{"command":null}]}`, unknown: []resource.Path{resource.AttrPath("probes").Index(0).Attr("command")}},
		{name: "secret not shown", inputs: `{"probes":[{"command":"true","token":{"x":"hunter22"}}]}`, wantPaths: []string{"probes[0].token"}, wantText: "expected string, got an attribute set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: "nested.thing", Inputs: resource.Values{JSON: json.RawMessage(tt.inputs)}, Unknown: tt.unknown})
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, d := range diags {
				paths = append(paths, d.Attribute.String())
				if strings.Contains(d.String(), "hunter22") {
					t.Errorf("a diagnostic shows the value: %s", d)
				}
			}
			if strings.Join(paths, " ") != strings.Join(tt.wantPaths, " ") {
				t.Fatalf("errors at %q, want %q (%v)", paths, tt.wantPaths, diags)
			}
			if tt.wantText != "" && !strings.Contains(diags[0].String(), tt.wantText) {
				t.Errorf("error %q does not say %q", diags[0], tt.wantText)
			}
		})
	}
}

func TestNestedObjectsDecodeWithDefaults(t *testing.T) {
	decoded := make(chan nestedInputs, 1)
	h := sdktest.New(t, nestedProvider(decoded))
	h.Create("nested.thing", map[string]any{
		"probes":  []any{map[string]any{"command": "a"}, map[string]any{"command": "b", "timeout": 0.5, "retries": 0}},
		"volumes": map[string]any{"data": map[string]any{"size": 2}},
	})
	want := nestedInputs{
		Probes:  []probe{{Command: "a", Timeout: 10, Retries: 3}, {Command: "b", Timeout: 0.5, Retries: 0}},
		Volumes: map[string]volume{"data": {Size: 2, Mode: "0755"}},
	}
	if got := <-decoded; !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

func TestNestedSensitiveAttributesAreRedacted(t *testing.T) {
	const secret = "hunter22-token"
	h := sdktest.New(t, nestedProvider(nil))
	// The request marks nothing sensitive: the SDK knows from the schema.
	_, ev := h.Create("nested.thing", map[string]any{"probes": []any{map[string]any{"command": "check", "token": secret}}})
	if len(ev.Logs) != 1 || !strings.Contains(ev.Logs[0], "probe check") {
		t.Fatalf("logs %q, want one line about the probe", ev.Logs)
	}
	if strings.Contains(ev.Logs[0], secret) {
		t.Errorf("a log line shows the nested sensitive token: %q", ev.Logs[0])
	}
}

func TestNestedSchemaIsPublished(t *testing.T) {
	h := sdktest.New(t, nestedProvider(nil))
	probes := h.Schema.Types["thing"].Inputs[0]
	if probes.Type != "list(object)" || len(probes.Attributes) != 4 {
		t.Fatalf("probes declared as %s with %d attributes, want list(object) with 4", probes.Type, len(probes.Attributes))
	}
	timeout := probes.Attributes[1]
	if timeout.Name != "timeout" || string(timeout.Default) != "10" || timeout.Description != "Seconds." {
		t.Errorf("probes' timeout published as %+v", timeout)
	}
	if !probes.Attributes[3].Sensitive {
		t.Errorf("probes' token is not published as sensitive")
	}
}

type probeWithTypo struct {
	Command string  `json:"command"`
	Timeout float64 `json:"timout"`
	Retries int     `json:"retries"`
	Token   string  `json:"token"`
}

type probesHeldBadly struct {
	Probes []probeWithTypo `json:"probes"`
}

type probesAsStrings struct {
	Probes []string `json:"probes"`
}

type probesAsMaps struct {
	Probes []map[string]any `json:"probes"`
}

func TestNestedBindingsAreChecked(t *testing.T) {
	probes := []sdk.Attr{sdk.ListOfObjects("probes", "", probeAttrs()...)}
	tests := []struct {
		name     string
		provider *sdk.Provider
		want     []string // parts of the error; none for no error
	}{
		{name: "struct elements", provider: typeWith[struct {
			Probes []probe `json:"probes"`
		}, struct{}](probes, nil)},
		{name: "pointer elements", provider: typeWith[struct {
			Probes []*probe `json:"probes"`
		}, struct{}](probes, nil)},
		{name: "map elements take any attributes", provider: typeWith[probesAsMaps, struct{}](probes, nil)},
		{name: "mistyped tag in an element", provider: typeWith[probesHeldBadly, struct{}](probes, nil),
			want: []string{`input "probes"`, `elements: attribute "timeout" has no field in sdk_test.probeWithTypo`, `json name "timout") is not a declared attribute`}},
		{name: "elements not objects", provider: typeWith[probesAsStrings, struct{}](probes, nil),
			want: []string{`input "probes"`, `elements: attributes are held by string, which is not a struct`}},
		{name: "map values", provider: typeWith[struct {
			Volumes map[string]probeWithTypo `json:"volumes"`
		}, struct{}]([]sdk.Attr{sdk.MapOfObjects("volumes", "", probeAttrs()...)}, nil),
			want: []string{`input "volumes"`, `values: attribute "timeout" has no field`}},
		{name: "default checked against the attributes", provider: typeWith[struct {
			Probes []probe `json:"probes"`
		}, struct{}]([]sdk.Attr{sdk.ListOfObjects("probes", "", probeAttrs()...).Default([]any{map[string]any{"timeout": 1}})}, nil),
			want: []string{`input "probes": default: probes[0].command: missing required input`}},
		{name: "nested declaration checked", provider: typeWith[struct {
			Probes []probe `json:"probes"`
		}, struct{}]([]sdk.Attr{sdk.ListOfObjects("probes", "", append(probeAttrs(), sdk.String("command", ""))...)}, nil),
			want: []string{`input "probes": attribute "command" is declared twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.provider.Check()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed; want an error saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not say %q", err, w)
				}
			}
		})
	}
}
