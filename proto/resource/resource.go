// Package resource is the Go face of the Landscaper resource protocol: the
// types a provider implements and the engine calls. The generated protobuf
// code is kept apart (proto/internal/resourcev1) and converted at the edge by
// package plugin, so the wire format can change without touching providers.
package resource

import (
	"context"
	"encoding/json"
)

// Provider is what a provider binary serves and what the engine calls. The
// same interface is implemented by a provider in-process and by the gRPC
// client that talks to a plugin, so tests can use either.
type Provider interface {
	// GetSchema describes the provider and its resource types. It is called
	// once per run, before anything else.
	GetSchema(ctx context.Context) (*ProviderSchema, error)
	// Validate checks desired inputs; it must not touch anything. Unknown
	// inputs (known only after apply) are listed in req.Unknown.
	Validate(ctx context.Context, req ValidateRequest) (Diagnostics, error)
	// Plan decides the action for one resource. Prior is nil for a resource
	// that does not exist yet.
	Plan(ctx context.Context, req PlanRequest) (*PlanResponse, error)
	// Create makes a resource. Events (log lines, progress) go to sink while
	// it runs.
	Create(ctx context.Context, req CreateRequest, sink EventSink) (*Result, error)
	// Update changes a resource in place.
	Update(ctx context.Context, req UpdateRequest, sink EventSink) (*Result, error)
	// Delete removes a resource; deleting what is gone already succeeds.
	Delete(ctx context.Context, req DeleteRequest, sink EventSink) (*Result, error)
	// Read reports whether the resource still exists and what it is now.
	Read(ctx context.Context, req ReadRequest) (*ReadResponse, error)
}

// Preparer is a Provider that can do the cheap, harmless part of a coming
// create or update ahead of time (copy a closure to its host, say), so the
// change itself is quick. Prepare must not change what the resource is.
// The engine's side of a plugin always has it; a provider without it
// answers with no diagnostics.
type Preparer interface {
	Prepare(ctx context.Context, req PrepareRequest) (Diagnostics, error)
}

// PrepareRequest names a resource and the inputs of its coming create or
// update; Prior is nil for a resource that does not exist yet.
type PrepareRequest struct {
	Type   string
	Name   string
	Prior  *State
	Inputs Values
}

// EventSink receives the events of a long operation.
type EventSink interface {
	Log(text string)
	Progress(message string, fraction float64)
}

// DiscardEvents is an EventSink that drops everything.
type DiscardEvents struct{}

// Log drops the line.
func (DiscardEvents) Log(string) {}

// Progress drops the progress report.
func (DiscardEvents) Progress(string, float64) {}

// ProviderSchema describes a provider.
type ProviderSchema struct {
	Name    string
	Version string
	// Types maps a type name without the provider prefix ("file") to its
	// schema.
	Types       map[string]*TypeSchema
	Diagnostics Diagnostics
}

// TypeSchema describes one resource type.
type TypeSchema struct {
	Description string
	Inputs      []Attribute
	Outputs     []Attribute
	// Version is the version of the shape in which the provider records
	// the type's state (0 until it first changes it); see State.SchemaVersion.
	Version int64
}

// Input returns the input attribute with the given name.
func (s *TypeSchema) Input(name string) (Attribute, bool) {
	return findAttribute(s.Inputs, name)
}

// Output returns the output attribute with the given name.
func (s *TypeSchema) Output(name string) (Attribute, bool) {
	return findAttribute(s.Outputs, name)
}

func findAttribute(attrs []Attribute, name string) (Attribute, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// Attribute describes an input or an output.
type Attribute struct {
	Name string
	// Type is "string", "number", "integer" (a whole number), "bool",
	// "list(T)", "map(T)", "object" or "any".
	Type        string
	Required    bool
	Default     json.RawMessage
	Sensitive   bool
	Description string
	// ForceNew: a change of this input replaces the resource.
	ForceNew bool
	// Attributes of an object-typed attribute, or of each element of a
	// list(object) or map(object) one.
	Attributes []Attribute
}

// Values is a JSON document and the paths of its sensitive parts.
type Values struct {
	JSON      json.RawMessage
	Sensitive []Path
}

// State is the engine's record of a resource.
type State struct {
	Inputs  Values
	Outputs Values
	Private []byte
	// SchemaVersion is the version of the type's schema the provider
	// wrote the state with (0 for state recorded before versions
	// existed). A provider upgrades older state before it uses it and
	// refuses state newer than it knows.
	SchemaVersion int64
}

// ValidateRequest asks whether desired inputs are acceptable.
type ValidateRequest struct {
	Type    string
	Name    string
	Inputs  Values
	Unknown []Path
}

// Action is what a plan does to a resource.
type Action int

// The actions, in the order a plan lists them.
const (
	ActionUnspecified Action = iota
	ActionNoop
	ActionCreate
	ActionUpdate
	ActionReplace
	ActionDelete
)

func (a Action) String() string {
	switch a {
	case ActionNoop:
		return "no-op"
	case ActionCreate:
		return "create"
	case ActionUpdate:
		return "update"
	case ActionReplace:
		return "replace"
	case ActionDelete:
		return "delete"
	}
	return "unspecified"
}

// PlanRequest asks a provider what it would do.
type PlanRequest struct {
	Type    string
	Name    string
	Prior   *State
	Desired Values
	Unknown []Path
	// Describe asks for PlanResponse.Details: a person will read the
	// plan. Without it a provider should not spend time on them.
	Describe bool
}

// PlanResponse is a provider's decision.
type PlanResponse struct {
	Action          Action
	Changed         []Path
	RequiresReplace []Path
	// PlannedOutputs holds the outputs known already (a JSON object, may be
	// empty); UnknownOutputs the names known only after apply.
	PlannedOutputs json.RawMessage
	UnknownOutputs []string
	Diagnostics    Diagnostics
	// Claims name what the resource owns alone while it exists (a
	// machine's boot entry, a file); no two members of a deployment may
	// claim the same.
	Claims []string
	// Details tell what the change does beyond its attributes, when the
	// provider can say (nil otherwise). Never sensitive.
	Details *ChangeDetails
}

// ChangeDetails describe a planned change for people: a summary line,
// further lines shown on request, and the same as a JSON object whose
// shape the resource type defines.
type ChangeDetails struct {
	Summary string
	Lines   []string
	JSON    json.RawMessage
}

// CreateRequest asks for a new resource.
type CreateRequest struct {
	Type   string
	Name   string
	Inputs Values
}

// UpdateRequest asks for a change in place.
type UpdateRequest struct {
	Type   string
	Name   string
	Prior  State
	Inputs Values
}

// DeleteRequest asks for a resource to go.
type DeleteRequest struct {
	Type  string
	Name  string
	Prior State
	// Replacing says the resource is created again right after this
	// delete, in the same apply.
	Replacing bool
}

// Result ends an operation. With error diagnostics it may still carry
// state (HasState) that the engine keeps.
type Result struct {
	HasState    bool
	Outputs     Values
	Private     []byte
	Diagnostics Diagnostics
	// SchemaVersion is the schema version of the state the result
	// carries: the type's for what the provider wrote, the prior's for a
	// prior state kept as it was.
	SchemaVersion int64
}

// ReadRequest asks what exists now. For a resource whose create was
// interrupted, Prior holds only the inputs.
type ReadRequest struct {
	Type  string
	Name  string
	Prior State
}

// ReadResponse reports a resource as it is.
type ReadResponse struct {
	Exists      bool
	Outputs     Values
	Private     []byte
	Diagnostics Diagnostics
	// SchemaVersion is the schema version of Outputs and Private.
	SchemaVersion int64
	// UpgradedPrior is the recorded state upgraded to SchemaVersion when
	// the provider upgraded it (nil otherwise): the engine records its
	// inputs, and compares Outputs with its outputs to find drift.
	UpgradedPrior *State
}
