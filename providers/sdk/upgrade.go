package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// RawState is a resource's recorded state as the JSON it was recorded
// in, for Type.Upgrade: an upgrade renames and reshapes its attributes
// freely, since the shape it reads is not In and Out any more.
type RawState struct {
	// Inputs are the recorded inputs by name (never nil).
	Inputs map[string]json.RawMessage
	// Outputs are the recorded outputs by name (never nil; empty when
	// HasOutputs is false).
	Outputs map[string]json.RawMessage
	// HasOutputs is false for a resource whose create was interrupted:
	// the engine knows its inputs only.
	HasOutputs bool
	// Private is the provider's own opaque data.
	Private []byte
}

// errNoUpgrade is the reason a type whose Version is above 0 must have
// an Upgrade.
var errNoUpgrade = errors.New("it has Version above 0 but no Upgrade for state recorded at older versions")

// checkVersion reports a Version that cannot be served.
func (t *Type[In, Out]) checkVersion() error {
	switch {
	case t.Version < 0:
		return fmt.Errorf("its Version is %d; versions start at 0", t.Version)
	case t.Version > 0 && t.Upgrade == nil:
		return errNoUpgrade
	case t.Version == 0 && t.Upgrade != nil:
		return errors.New("it has an Upgrade but Version 0: there is no older version to upgrade from")
	}
	return nil
}

// upgrade brings recorded state to the type's version, one Upgrade step
// per version; upgraded says whether it did anything. State newer than
// the type is an error: it was written by a newer provider, and reading
// it as an older shape could lose what it records.
func (t *Type[In, Out]) upgrade(ctx context.Context, typ string, s resource.State) (_ resource.State, upgraded bool, _ error) {
	from := s.SchemaVersion
	switch {
	case from == int64(t.Version):
		return s, false, nil
	case from > int64(t.Version):
		return s, false, fmt.Errorf("the recorded state of this %s has schema version %d, newer than version %d, the newest this provider knows: it was written by a newer provider; use that one (or a newer one) again", typ, from, t.Version)
	case from < 0:
		return s, false, fmt.Errorf("the recorded state of this %s has schema version %d; versions start at 0", typ, from)
	case t.Upgrade == nil:
		return s, false, fmt.Errorf("the recorded state of this %s has schema version %d and the type, at version %d, has no Upgrade", typ, from, t.Version)
	}
	raw, err := rawState(s)
	if err != nil {
		return s, false, fmt.Errorf("upgrade the recorded state of this %s from schema version %d: %w", typ, from, err)
	}
	for v := int(from); v < t.Version; v++ {
		next, err := t.Upgrade(ctx, v, raw)
		if err != nil {
			return s, false, fmt.Errorf("upgrade the recorded state of this %s from schema version %d to %d: %w", typ, v, v+1, err)
		}
		raw = next
	}
	up, err := t.encodeRaw(raw, s)
	if err != nil {
		return s, false, fmt.Errorf("upgrade the recorded state of this %s from schema version %d to %d: %w", typ, from, t.Version, err)
	}
	return up, true, nil
}

// rawState splits recorded state into attributes by name.
func rawState(s resource.State) (RawState, error) {
	raw := RawState{Inputs: map[string]json.RawMessage{}, Outputs: map[string]json.RawMessage{}, Private: s.Private}
	if err := splitObject(s.Inputs.JSON, raw.Inputs); err != nil {
		return raw, fmt.Errorf("recorded inputs: %w", err)
	}
	if len(bytes.TrimSpace(s.Outputs.JSON)) > 0 && !isNull(s.Outputs.JSON) {
		raw.HasOutputs = true
		if err := splitObject(s.Outputs.JSON, raw.Outputs); err != nil {
			return raw, fmt.Errorf("recorded outputs: %w", err)
		}
	}
	return raw, nil
}

func splitObject(doc json.RawMessage, into map[string]json.RawMessage) error {
	if len(bytes.TrimSpace(doc)) == 0 || isNull(doc) {
		return nil
	}
	if err := json.Unmarshal(doc, &into); err != nil {
		return fmt.Errorf("not an attribute set: %w", err)
	}
	return nil
}

// encodeRaw turns upgraded state back into recorded state at the type's
// version. The sensitive paths are those recorded (a value that was
// secret stays so) and those the type now declares.
func (t *Type[In, Out]) encodeRaw(raw RawState, prior resource.State) (resource.State, error) {
	if raw.Inputs == nil {
		raw.Inputs = map[string]json.RawMessage{}
	}
	in, err := json.Marshal(raw.Inputs)
	if err != nil {
		return prior, fmt.Errorf("encode upgraded inputs: %w", err)
	}
	up := resource.State{
		Inputs:        withDeclaredSensitive(resource.Values{JSON: in, Sensitive: prior.Inputs.Sensitive}, t.inputAttributes()),
		Private:       raw.Private,
		SchemaVersion: int64(t.Version),
	}
	if raw.HasOutputs {
		out, err := json.Marshal(raw.Outputs)
		if err != nil {
			return prior, fmt.Errorf("encode upgraded outputs: %w", err)
		}
		up.Outputs = withDeclaredSensitive(resource.Values{JSON: out, Sensitive: prior.Outputs.Sensitive}, t.outputAttributes())
	}
	return up, nil
}
