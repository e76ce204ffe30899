package plugin

import (
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestSchemaVersionsCrossTheWire checks that every schema version the
// protocol carries survives the conversion to the wire and back.
func TestSchemaVersionsCrossTheWire(t *testing.T) {
	tests := []struct {
		name string
		got  func() int64
	}{
		{"state", func() int64 {
			return stateFromProto(stateToProto(&resource.State{SchemaVersion: 3})).SchemaVersion
		}},
		{"result", func() int64 {
			return resultFromProto(resultToProto(&resource.Result{HasState: true, SchemaVersion: 3})).SchemaVersion
		}},
		{"read response", func() int64 {
			return readResponseFromProto(readResponseToProto(&resource.ReadResponse{Exists: true, SchemaVersion: 3})).SchemaVersion
		}},
		{"read response's upgraded prior", func() int64 {
			r := readResponseFromProto(readResponseToProto(&resource.ReadResponse{Exists: true, UpgradedPrior: &resource.State{SchemaVersion: 3}}))
			if r.UpgradedPrior == nil {
				return -1
			}
			return r.UpgradedPrior.SchemaVersion
		}},
		{"type schema", func() int64 {
			s := schemaFromProto(schemaToProto(&resource.ProviderSchema{Types: map[string]*resource.TypeSchema{"t": {Version: 3}}}))
			return s.Types["t"].Version
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(); got != 3 {
				t.Errorf("schema version after the round trip: %d, want 3", got)
			}
		})
	}
}

// TestReadResponseWithoutUpgradeHasNoUpgradedPrior checks that a read
// that upgraded nothing does not grow an empty upgraded state on the way.
func TestReadResponseWithoutUpgradeHasNoUpgradedPrior(t *testing.T) {
	if r := readResponseFromProto(readResponseToProto(&resource.ReadResponse{Exists: true})); r.UpgradedPrior != nil {
		t.Errorf("upgraded prior: %+v, want nil", r.UpgradedPrior)
	}
}
