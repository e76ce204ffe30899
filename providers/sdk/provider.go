package sdk

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/plugin"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk/nixops4"
)

// Provider is a set of resource types served by one binary.
type Provider struct {
	Name    string
	Version string
	// Types maps a type name ("file") to its implementation.
	Types map[string]Resource
}

// Serve runs the provider as a plugin of the engine. Call it from main.
// A provider whose declarations do not hold together (see Check) exits
// with the reasons on stderr before the plugin handshake, so the engine
// shows them when it starts the provider.
//
// Started with the argument --nixops4 (NixOps4's provider.args), it
// serves NixOps4's resource protocol v0 on stdin and stdout instead
// (package providers/sdk/nixops4, docs/nixops4.md) and exits when stdin
// ends.
func Serve(p *Provider) {
	if err := p.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "provider %s is broken: %v\n", p.Name, err)
		os.Exit(1)
	}
	if slices.Contains(os.Args[1:], nixops4.Flag) {
		if err := nixops4.ServeStdio(p); err != nil {
			fmt.Fprintf(os.Stderr, "provider %s (NixOps4 protocol): %v\n", p.Name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	plugin.Serve(p)
}

var (
	_ resource.Provider = (*Provider)(nil)
	_ resource.Preparer = (*Provider)(nil)
)

// lookup finds a type by its name. The engine sends the full name with the
// name the deployment gave the provider ("mine.file" for a provider declared
// as providers.mine), which need not be the provider's own name.
func (p *Provider) lookup(typ string) (Resource, error) {
	name := typ
	if i := strings.LastIndexByte(typ, '.'); i >= 0 {
		name = typ[i+1:]
	}
	r, ok := p.Types[name]
	if !ok {
		known := make([]string, 0, len(p.Types))
		for n := range p.Types {
			known = append(known, p.Name+"."+n)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("provider %s has no resource type %q (it has %s)", p.Name, typ, strings.Join(known, ", "))
	}
	return r, nil
}

func unknownType(err error) resource.Diagnostics {
	return resource.Diagnostics{{Severity: resource.SeverityError, Summary: "unknown resource type", Detail: err.Error()}}
}

// GetSchema describes the provider's types. A provider that fails Check
// says why in the schema's diagnostics.
func (p *Provider) GetSchema(context.Context) (*resource.ProviderSchema, error) {
	s := &resource.ProviderSchema{Name: p.Name, Version: p.Version, Types: make(map[string]*resource.TypeSchema, len(p.Types))}
	if err := p.Check(); err != nil {
		s.Diagnostics = resource.Diagnostics{resource.Error(nil, "the provider's declarations are broken", "%v", err)}
	}
	for name, t := range p.Types {
		s.Types[name] = t.schema()
	}
	return s, nil
}

// Validate checks inputs against the type's schema and its own rules.
func (p *Provider) Validate(_ context.Context, req resource.ValidateRequest) (resource.Diagnostics, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return unknownType(err), nil
	}
	return r.validate(req), nil
}

// Plan decides the action for one resource.
func (p *Provider) Plan(ctx context.Context, req resource.PlanRequest) (*resource.PlanResponse, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return &resource.PlanResponse{Diagnostics: unknownType(err)}, nil
	}
	return r.plan(ctx, req)
}

// Create makes a resource.
func (p *Provider) Create(ctx context.Context, req resource.CreateRequest, sink resource.EventSink) (*resource.Result, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return &resource.Result{Diagnostics: unknownType(err)}, nil
	}
	return r.create(ctx, req, sink)
}

// Update changes a resource in place.
func (p *Provider) Update(ctx context.Context, req resource.UpdateRequest, sink resource.EventSink) (*resource.Result, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return &resource.Result{HasState: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: unknownType(err)}, nil
	}
	return r.update(ctx, req, sink)
}

// Delete removes a resource.
func (p *Provider) Delete(ctx context.Context, req resource.DeleteRequest, sink resource.EventSink) (*resource.Result, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return &resource.Result{HasState: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: unknownType(err)}, nil
	}
	return r.delete(ctx, req, sink)
}

// Read reports what exists now.
func (p *Provider) Read(ctx context.Context, req resource.ReadRequest) (*resource.ReadResponse, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return &resource.ReadResponse{Exists: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: unknownType(err)}, nil
	}
	return r.read(ctx, req)
}

// Prepare does the cheap part of a coming change ahead of time, for types
// that have it.
func (p *Provider) Prepare(ctx context.Context, req resource.PrepareRequest) (resource.Diagnostics, error) {
	r, err := p.lookup(req.Type)
	if err != nil {
		return unknownType(err), nil
	}
	return r.prepare(ctx, req), nil
}
