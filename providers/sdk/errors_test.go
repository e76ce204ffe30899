package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

type errInputs struct {
	Value string `json:"value"`
}

func TestErrorsOfOperationsKeepTheirAttributePath(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantPath string
		want     string
	}{
		{name: "plain error", err: errors.New("disk full"), want: "disk full"},
		{name: "error at a path", err: sdk.ErrorAt(resource.AttrPath("value"), "too long", "%d bytes", 9), wantPath: "value", want: "value: too long: 9 bytes"},
		{name: "wrapped error at a path", err: fmt.Errorf("write entry: %w", sdk.ErrorAt(resource.AttrPath("value"), "too long", "%d bytes", 9)), wantPath: "value", want: "value: write entry: too long: 9 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &sdk.Provider{Name: "errs", Types: map[string]sdk.Resource{"thing": &sdk.Type[errInputs, struct{}]{
				Inputs: []sdk.Attr{sdk.String("value", "")},
				Create: func(context.Context, *sdk.Op, errInputs) (struct{}, error) { return struct{}{}, tt.err },
			}}}
			h := sdktest.New(t, p)
			res, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: "errs.thing", Name: "m", Inputs: resource.Values{JSON: h.JSON(errInputs{Value: "v"})}}, resource.DiscardEvents{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Diagnostics) != 1 || res.Diagnostics[0].Severity != resource.SeverityError {
				t.Fatalf("diagnostics %v, want one error", res.Diagnostics)
			}
			d := res.Diagnostics[0]
			if d.Attribute.String() != tt.wantPath || d.String() != tt.want {
				t.Errorf("error %q at %q, want %q at %q", d.String(), d.Attribute.String(), tt.want, tt.wantPath)
			}
		})
	}
}
