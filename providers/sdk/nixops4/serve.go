// Package nixops4 serves a Landscaper provider to NixOps4, over NixOps4's
// resource protocol v0 (JSON lines on stdin and stdout, package
// proto/nixops4): every provider binary does this when started with
// --nixops4 (see sdk.Serve).
//
// The mapping onto the Landscaper protocol:
//   - createResourceRequest: Validate, Plan (of a new resource), Create; the
//     outputs are the answer.
//   - updateResourceRequest: Validate, then Plan against the recorded inputs
//     and outputs NixOps4 sends; a no-op answers the recorded outputs, an
//     update is an Update, a replacement (a change of an input that forces
//     one) is a Delete of the old resource and a Create of the new one.
//   - state requests: refused; no Landscaper provider stores NixOps4 state.
//
// v0 has no sensitive values, so a type with sensitive outputs is refused
// before anything is made: NixOps4 would keep them in its state and hand
// them to Nix. Errors, with their attribute paths, are errorResponses; log
// lines and warnings go to stderr.
package nixops4

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	wire "github.com/landscaper-nix/landscaper/proto/nixops4"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Flag is the command-line argument that makes a provider binary speak
// NixOps4's protocol.
const Flag = "--nixops4"

// server answers NixOps4's requests with one provider.
type server struct {
	p      resource.Provider
	schema *resource.ProviderSchema
	log    io.Writer
}

// Serve answers the requests read from in on out, one response line per
// request line, until in ends (nil) or ctx is done. Log lines go to log.
func Serve(ctx context.Context, p resource.Provider, in io.Reader, out, log io.Writer) error {
	schema, err := p.GetSchema(ctx)
	if err != nil {
		return fmt.Errorf("get schema: %w", err)
	}
	if schema.Diagnostics.HasError() {
		return fmt.Errorf("provider %s: %w", schema.Name, schema.Diagnostics.Err())
	}
	s := &server{p: p, schema: schema, log: log}
	type read struct {
		req *wire.Request
		err error
	}
	requests := make(chan read)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		r := wire.NewReader(in)
		for {
			req, err := r.ReadRequest()
			select {
			case requests <- read{req, err}:
			case <-stop:
				return
			}
			var lineErr *wire.LineError
			if err != nil && !errors.As(err, &lineErr) {
				return
			}
		}
	}()
	for {
		var next read
		select {
		case <-ctx.Done():
			return ctx.Err()
		case next = <-requests:
		}
		var resp *wire.Response
		var lineErr *wire.LineError
		switch {
		case errors.Is(next.err, io.EOF):
			return nil
		case errors.As(next.err, &lineErr):
			// A line we cannot read is answered, and the next one read.
			resp = wire.Errorf("provider %s: %v", schema.Name, next.err)
		case next.err != nil:
			return fmt.Errorf("read request: %w", next.err)
		default:
			resp = s.handle(ctx, next.req)
		}
		if err := wire.Write(out, resp); err != nil {
			return err
		}
	}
}

func (s *server) handle(ctx context.Context, req *wire.Request) *wire.Response {
	switch {
	case req.CreateResourceRequest != nil:
		out, err := s.create(ctx, req.CreateResourceRequest)
		if err != nil {
			return wire.Errorf("%v", err)
		}
		return &wire.Response{CreateResourceResponse: &wire.CreateResourceResponse{OutputProperties: out}}
	case req.UpdateResourceRequest != nil:
		out, err := s.update(ctx, req.UpdateResourceRequest)
		if err != nil {
			return wire.Errorf("%v", err)
		}
		return &wire.Response{UpdateResourceResponse: &wire.UpdateResourceResponse{OutputProperties: out}}
	default:
		return wire.Errorf("provider %s is not a NixOps4 state provider: %s is not supported", s.schema.Name, req.Kind())
	}
}

// typeFor finds the schema of a NixOps4 type name ("file", or
// "local.file") and returns the full Landscaper name ("local.file").
func (s *server) typeFor(name string) (string, *resource.TypeSchema, error) {
	short := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		short = name[i+1:]
	}
	ts, ok := s.schema.Types[short]
	if !ok {
		known := make([]string, 0, len(s.schema.Types))
		for n := range s.schema.Types {
			known = append(known, n)
		}
		sort.Strings(known)
		return "", nil, fmt.Errorf("provider %s has no resource type %q (it has %s)", s.schema.Name, name, strings.Join(known, ", "))
	}
	full := s.schema.Name + "." + short
	var secret []string
	for _, o := range ts.Outputs {
		if o.Sensitive {
			secret = append(secret, o.Name)
		}
	}
	if len(secret) > 0 {
		return "", nil, fmt.Errorf("%s: refused: its outputs %s are sensitive, and NixOps4's protocol v0 has no sensitive values (NixOps4 would keep them in its state and pass them through Nix); nothing was made",
			full, strings.Join(secret, ", "))
	}
	return full, ts, nil
}

// object checks that a properties document is a JSON object.
func object(what string, doc json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s must be a JSON object", what)
	}
	return doc, nil
}

// failure turns error diagnostics into an error that names the type and
// each attribute as inputs.<path>, and writes the warnings to the log.
func (s *server) failure(typ string, ds resource.Diagnostics) error {
	var msgs []string
	for _, d := range ds {
		line := d.Summary
		if d.Detail != "" {
			line += ": " + d.Detail
		}
		if len(d.Attribute) > 0 {
			line = "inputs." + d.Attribute.String() + ": " + line
		}
		if d.Severity == resource.SeverityError {
			msgs = append(msgs, line)
		} else {
			fmt.Fprintf(s.log, "%s: warning: %s\n", typ, line)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", typ, strings.Join(msgs, "; "))
}

// checkInputs validates inputs and plans them against prior (nil for a
// new resource).
func (s *server) checkInputs(ctx context.Context, typ string, prior *resource.State, inputs json.RawMessage) (*resource.PlanResponse, error) {
	values := resource.Values{JSON: inputs}
	ds, err := s.p.Validate(ctx, resource.ValidateRequest{Type: typ, Name: typ, Inputs: values})
	if err != nil {
		return nil, fmt.Errorf("%s: validate: %w", typ, err)
	}
	if err := s.failure(typ, ds); err != nil {
		return nil, err
	}
	plan, err := s.p.Plan(ctx, resource.PlanRequest{Type: typ, Name: typ, Prior: prior, Desired: values})
	if err != nil {
		return nil, fmt.Errorf("%s: plan: %w", typ, err)
	}
	if err := s.failure(typ, plan.Diagnostics); err != nil {
		return nil, err
	}
	return plan, nil
}

func (s *server) create(ctx context.Context, req *wire.CreateResourceRequest) (json.RawMessage, error) {
	typ, _, err := s.typeFor(req.Type)
	if err != nil {
		return nil, err
	}
	inputs, err := object(typ+": inputProperties", req.InputProperties)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkInputs(ctx, typ, nil, inputs); err != nil {
		return nil, err
	}
	return s.doCreate(ctx, typ, inputs)
}

func (s *server) doCreate(ctx context.Context, typ string, inputs json.RawMessage) (json.RawMessage, error) {
	res, err := s.p.Create(ctx, resource.CreateRequest{Type: typ, Name: typ, Inputs: resource.Values{JSON: inputs}}, s.sink(typ))
	if err != nil {
		return nil, fmt.Errorf("%s: create: %w", typ, err)
	}
	if err := s.failure(typ, res.Diagnostics); err != nil {
		if res.HasState {
			return nil, fmt.Errorf("%w (the create failed part way: what it made is left in place, and NixOps4 does not record it)", err)
		}
		return nil, err
	}
	return s.outputs(typ, res.Outputs)
}

// outputs returns a result's outputs for NixOps4, refusing any sensitive
// value (typeFor refuses such types first; this is the last guard).
func (s *server) outputs(typ string, v resource.Values) (json.RawMessage, error) {
	if len(v.Sensitive) > 0 {
		return nil, fmt.Errorf("%s: the result holds sensitive values, which NixOps4's protocol v0 cannot keep secret; they are not sent", typ)
	}
	if len(v.JSON) == 0 || string(v.JSON) == "null" {
		return json.RawMessage("{}"), nil
	}
	return object(typ+": outputs", v.JSON)
}

func (s *server) update(ctx context.Context, req *wire.UpdateResourceRequest) (json.RawMessage, error) {
	typ, ts, err := s.typeFor(req.Resource.Type)
	if err != nil {
		return nil, err
	}
	inputs, err := object(typ+": inputProperties", req.InputProperties)
	if err != nil {
		return nil, err
	}
	priorInputs, err := object(typ+": resource.inputProperties", req.Resource.InputProperties)
	if err != nil {
		return nil, err
	}
	// NixOps4 records no schema version: what it recorded is taken as
	// written by this provider, at the type's version, and not upgraded.
	prior := &resource.State{Inputs: resource.Values{JSON: priorInputs}, SchemaVersion: ts.Version}
	if len(req.Resource.OutputProperties) > 0 {
		if prior.Outputs.JSON, err = object(typ+": resource.outputProperties", req.Resource.OutputProperties); err != nil {
			return nil, err
		}
	}
	plan, err := s.checkInputs(ctx, typ, prior, inputs)
	if err != nil {
		return nil, err
	}
	switch plan.Action {
	case resource.ActionNoop:
		return s.outputs(typ, prior.Outputs)
	case resource.ActionCreate:
		// Nothing recorded to update (NixOps4 sent no outputs).
		return s.doCreate(ctx, typ, inputs)
	case resource.ActionUpdate:
		res, err := s.p.Update(ctx, resource.UpdateRequest{Type: typ, Name: typ, Prior: *prior, Inputs: resource.Values{JSON: inputs}}, s.sink(typ))
		if err != nil {
			return nil, fmt.Errorf("%s: update: %w", typ, err)
		}
		if err := s.failure(typ, res.Diagnostics); err != nil {
			return nil, err
		}
		return s.outputs(typ, res.Outputs)
	case resource.ActionReplace:
		fmt.Fprintf(s.log, "%s: replacing: %s changed\n", typ, paths(plan.RequiresReplace))
		res, err := s.p.Delete(ctx, resource.DeleteRequest{Type: typ, Name: typ, Prior: *prior, Replacing: true}, s.sink(typ))
		if err != nil {
			return nil, fmt.Errorf("%s: delete for replacement: %w", typ, err)
		}
		if err := s.failure(typ, res.Diagnostics); err != nil {
			return nil, fmt.Errorf("%w (the old resource could not be deleted, so no new one was made)", err)
		}
		return s.doCreate(ctx, typ, inputs)
	}
	return nil, fmt.Errorf("%s: the provider planned %v, which an update cannot do", typ, plan.Action)
}

func paths(ps []resource.Path) string {
	if len(ps) == 0 {
		return "an input"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = "inputs." + p.String()
	}
	return strings.Join(names, ", ")
}

// sink writes an operation's events to the log, one line each.
func (s *server) sink(typ string) resource.EventSink { return logSink{w: s.log, typ: typ} }

type logSink struct {
	w   io.Writer
	typ string
}

func (l logSink) Log(text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(l.w, "%s: %s\n", l.typ, line)
	}
}

func (l logSink) Progress(message string, fraction float64) {
	if fraction >= 0 {
		fmt.Fprintf(l.w, "%s: %s (%.0f%%)\n", l.typ, message, fraction*100)
		return
	}
	fmt.Fprintf(l.w, "%s: %s\n", l.typ, message)
}
