// Package state records what Landscaper has made: one document per
// deployment with every resource's inputs, outputs and private data, and a
// record of each operation before it starts. Backends (a local file; later
// PostgreSQL) store the document atomically under a writer lock.
package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// FormatVersion is the version of the state document's format.
const FormatVersion = 1

// State is the whole recorded state of a deployment.
type State struct {
	Version int `json:"version"`
	// Lineage is set once when the state is first created; a state of
	// another lineage is never overwritten.
	Lineage string `json:"lineage"`
	// Serial grows by one with every write.
	Serial    uint64               `json:"serial"`
	Resources map[string]*Resource `json:"resources"`
	// Pending holds operations that were started and whose result has not
	// been recorded. After a crash, the engine asks the provider (Read)
	// what exists for each.
	Pending map[string]*Pending `json:"pending,omitempty"`
}

// New returns an empty state with a fresh lineage.
func New() *State {
	return &State{Version: FormatVersion, Lineage: newLineage(), Resources: map[string]*Resource{}, Pending: map[string]*Pending{}}
}

// Resource is one member's record.
type Resource struct {
	// Type is the full type name, e.g. "local.file".
	Type string `json:"type"`
	// Provider names the provider: a built-in name, or the executable path
	// of a provider declared by the deployment.
	Provider string `json:"provider"`
	// ProviderPath is the executable of a provider the deployment declared
	// (empty for built-in providers), so destroy can find it.
	ProviderPath     string          `json:"providerPath,omitempty"`
	Inputs           json.RawMessage `json:"inputs"`
	SensitiveInputs  []resource.Path `json:"sensitiveInputs,omitempty"`
	Outputs          json.RawMessage `json:"outputs"`
	SensitiveOutputs []resource.Path `json:"sensitiveOutputs,omitempty"`
	Private          []byte          `json:"private,omitempty"`
	// SchemaVersion is the version of the resource type's schema the
	// provider recorded Inputs, Outputs and Private with; absent (0) in
	// states recorded before versions existed. The provider upgrades
	// older records when it is handed them.
	SchemaVersion int64 `json:"schemaVersion,omitempty"`
	// Dependencies are the members whose outputs this one's inputs used
	// when it was last applied; deletion runs in reverse of them.
	Dependencies []string `json:"dependencies,omitempty"`
	// Tainted marks a resource whose create or update failed half way; the
	// next plan replaces it.
	Tainted bool `json:"tainted,omitempty"`
	// ComputesWithOutputs marks a member whose inputs computed with other
	// members' outputs (hashed, compared or parsed them) when it was last
	// planned: the next plan evaluates it on its own, once, with the
	// outputs known then.
	ComputesWithOutputs bool `json:"computesWithOutputs,omitempty"`
}

// Operation is what a pending record says was being done.
type Operation string

// The operations that are recorded before they start.
const (
	OpCreate Operation = "create"
	OpUpdate Operation = "update"
	OpDelete Operation = "delete"
)

// Pending is an operation in flight.
type Pending struct {
	Operation Operation `json:"operation"`
	Type      string    `json:"type"`
	Provider  string    `json:"provider"`
	// ProviderPath is as in Resource.
	ProviderPath string `json:"providerPath,omitempty"`
	// Inputs are the inputs sent with the operation (for a delete, the
	// recorded ones).
	Inputs          json.RawMessage `json:"inputs"`
	SensitiveInputs []resource.Path `json:"sensitiveInputs,omitempty"`
	Since           time.Time       `json:"since"`
	// SchemaVersion is, for a create, the type's schema version the
	// inputs were sent with, so that settling an interrupted create asks
	// the provider in the shape it knows them.
	SchemaVersion int64 `json:"schemaVersion,omitempty"`
}

// LockInfo says who holds the writer lock.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("pid %d on %s (%s), since %s", l.PID, l.Host, l.Command, l.Since.Format(time.RFC3339))
}

// LockedError is returned when another writer holds the lock.
type LockedError struct {
	Holder LockInfo
	// Where names the lock (a file path or a database).
	Where string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("state %s is locked by %s", e.Where, e.Holder)
}

// ErrStale is returned when a write would overwrite a state of another
// lineage or a newer serial.
var ErrStale = errors.New("state changed underneath: another writer has written a newer state")

// Backend stores a state document.
type Backend interface {
	// Lock takes the writer lock, waiting up to timeout (0: fail at once
	// with a *LockedError). The lock is released by the returned func and,
	// whatever happens, when this process dies.
	Lock(ctx context.Context, info LockInfo, timeout time.Duration) (unlock func() error, err error)
	// Read returns the stored state, or a new empty one if there is none. A
	// stored state that cannot be parsed is an error, never replaced.
	Read(ctx context.Context) (*State, error)
	// Write stores s atomically and durably with its serial increased by
	// one. It refuses (ErrStale) if the stored state's lineage differs or
	// its serial is not the one s was read or last written with.
	Write(ctx context.Context, s *State) error
	// Describe names where the state lives, for messages.
	Describe() string
}

// newLineage returns a fresh random lineage in the form of a version 4 UUID.
func newLineage() string {
	var b [16]byte
	// crypto/rand.Read never fails; it aborts the program if the system's
	// random source is unusable.
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Clone returns a deep copy of s: nothing in the copy shares memory with s.
func (s *State) Clone() *State {
	if s == nil {
		return nil
	}
	c := *s
	if s.Resources != nil {
		c.Resources = make(map[string]*Resource, len(s.Resources))
		for name, r := range s.Resources {
			c.Resources[name] = r.Clone()
		}
	}
	if s.Pending != nil {
		c.Pending = make(map[string]*Pending, len(s.Pending))
		for name, p := range s.Pending {
			c.Pending[name] = p.Clone()
		}
	}
	return &c
}

// Clone returns a deep copy of r.
func (r *Resource) Clone() *Resource {
	if r == nil {
		return nil
	}
	c := *r
	c.Inputs = bytes.Clone(r.Inputs)
	c.SensitiveInputs = clonePaths(r.SensitiveInputs)
	c.Outputs = bytes.Clone(r.Outputs)
	c.SensitiveOutputs = clonePaths(r.SensitiveOutputs)
	c.Private = bytes.Clone(r.Private)
	c.Dependencies = slices.Clone(r.Dependencies)
	return &c
}

// Clone returns a deep copy of p.
func (p *Pending) Clone() *Pending {
	if p == nil {
		return nil
	}
	c := *p
	c.Inputs = bytes.Clone(p.Inputs)
	c.SensitiveInputs = clonePaths(p.SensitiveInputs)
	return &c
}

func clonePaths(ps []resource.Path) []resource.Path {
	if ps == nil {
		return nil
	}
	c := make([]resource.Path, len(ps))
	for i, p := range ps {
		c[i] = slices.Clone(p)
	}
	return c
}
