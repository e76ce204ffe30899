// Package nixops4provider runs a NixOps4 resource provider (protocol v0,
// JSON lines on its stdin and stdout) as a Landscaper provider: a deployment
// declares it with protocol = "nixops4" and the types it has, since v0 has
// no schema call.
//
// What v0 allows and what it loses:
//   - A new member is a createResourceRequest; its outputs are recorded as
//     the member's state.
//   - A change of inputs is an updateResourceRequest for a type declared
//     with requireState (NixOps4 sends updates only to stateful resources),
//     and otherwise a new createResourceRequest, planned as a replacement
//     whose old resource is left in place.
//   - There is no plan from the provider (Landscaper compares the inputs),
//     no read (outputs are what was recorded; changes made outside are not
//     seen) and no delete (a removed member is forgotten, and what it made
//     stays). The plan says so as a warning on each changing member.
//   - v0 has no sensitive values: outputs are not secret.
package nixops4provider

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Type is a resource type of a NixOps4 provider, as the deployment declares
// it (NixOps4's providers declare the same in their provider modules).
type Type struct {
	Description string
	// Inputs are the input names the type takes; any other is refused.
	Inputs []string
	// Outputs are the output names it answers; each must be in every
	// answer.
	Outputs []string
	// RequireState is NixOps4's requireState: requests say isStateful, and
	// a change of inputs is an update rather than a new create.
	RequireState bool
}

// Spec says how to run a NixOps4 provider and what its types are.
type Spec struct {
	// Name is the deployment's name for the provider (providers.<name>).
	Name       string
	Executable string
	Args       []string
	// Dir is the provider's working directory ("": the engine's).
	Dir   string
	Types map[string]Type
}

// Check reports what is wrong with a spec, naming the provider and type.
func (s Spec) Check() error {
	var errs []error
	if s.Executable == "" {
		errs = append(errs, fmt.Errorf("providers.%s: an empty executable", s.Name))
	}
	if len(s.Types) == 0 {
		errs = append(errs, fmt.Errorf("providers.%s: a NixOps4 provider needs resourceTypes.<type> = { inputs = [ ... ]; outputs = [ ... ]; } (NixOps4's protocol v0 cannot tell its types)", s.Name))
	}
	for _, name := range sortedTypes(s.Types) {
		t := s.Types[name]
		at := fmt.Sprintf("providers.%s.resourceTypes.%s", s.Name, name)
		if name == "" || strings.ContainsAny(name, ".#") {
			errs = append(errs, fmt.Errorf("%s: a type name must be non-empty, without '.' or '#'", at))
		}
		for what, names := range map[string][]string{"inputs": t.Inputs, "outputs": t.Outputs} {
			seen := map[string]bool{}
			for _, n := range names {
				if n == "" || seen[n] {
					errs = append(errs, fmt.Errorf("%s.%s: %q is empty or given twice", at, what, n))
				}
				seen[n] = true
			}
		}
	}
	return errors.Join(errs...)
}

func sortedTypes(types map[string]Type) []string {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Schema is the provider's schema as the engine sees it: every input
// optional and of any type (the provider checks them), every output of
// any type and not sensitive.
func (s Spec) Schema() *resource.ProviderSchema {
	ps := &resource.ProviderSchema{Name: s.Name, Version: "nixops4-v0", Types: map[string]*resource.TypeSchema{}}
	for name, t := range s.Types {
		ts := &resource.TypeSchema{Description: t.Description}
		for _, in := range t.Inputs {
			ts.Inputs = append(ts.Inputs, resource.Attribute{Name: in, Type: "any"})
		}
		for _, out := range t.Outputs {
			ts.Outputs = append(ts.Outputs, resource.Attribute{Name: out, Type: "any"})
		}
		ps.Types[name] = ts
	}
	return ps
}
