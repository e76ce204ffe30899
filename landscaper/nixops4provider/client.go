package nixops4provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	wire "github.com/landscaper-nix/landscaper/proto/nixops4"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Client is a NixOps4 provider as a Landscaper provider. Validate, Plan,
// Read and Delete are answered without the provider (v0 has no such
// calls); its process is started at the first create or update and serves
// the rest of the run, one request at a time.
type Client struct {
	spec Spec
	// mu serialises requests and guards proc and killed.
	mu     sync.Mutex
	proc   *process
	killed bool
}

var _ resource.Provider = (*Client)(nil)

// New returns a client for the provider spec describes, or what is wrong
// with the spec.
func New(spec Spec) (*Client, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	return &Client{spec: spec}, nil
}

// GetSchema returns the types the deployment declared.
func (c *Client) GetSchema(context.Context) (*resource.ProviderSchema, error) {
	return c.spec.Schema(), nil
}

// typeOf finds a member's type ("mine.memo" or "memo").
func (c *Client) typeOf(full string) (string, Type, error) {
	name := full
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		name = full[i+1:]
	}
	t, ok := c.spec.Types[name]
	if !ok {
		return "", Type{}, fmt.Errorf("provider %s has no resource type %q (it declares %s)", c.spec.Name, full, strings.Join(sortedTypes(c.spec.Types), ", "))
	}
	return name, t, nil
}

func errorDiags(summary string, err error) resource.Diagnostics {
	return resource.Diagnostics{resource.Error(nil, summary, "%v", err)}
}

// inputsOf decodes an inputs document and checks its names against the
// declared ones.
func inputsOf(t Type, doc json.RawMessage) (map[string]json.RawMessage, resource.Diagnostics) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return nil, resource.Diagnostics{resource.Error(nil, "inputs must be an attribute set", "")}
	}
	var ds resource.Diagnostics
	for _, name := range sortedKeys(m) {
		if !contains(t.Inputs, name) {
			ds = append(ds, resource.Error(resource.AttrPath(name), "unknown input",
				"the type declares the inputs %s", strings.Join(t.Inputs, ", ")))
		}
	}
	return m, ds
}

// Validate checks the input names; the values are the provider's to judge
// when it is asked to create or update.
func (c *Client) Validate(_ context.Context, req resource.ValidateRequest) (resource.Diagnostics, error) {
	_, t, err := c.typeOf(req.Type)
	if err != nil {
		return errorDiags("unknown resource type", err), nil
	}
	_, ds := inputsOf(t, req.Inputs.JSON)
	return ds, nil
}

// limits is the warning every changing member of a NixOps4 provider
// carries in the plan.
func (c *Client) limits() resource.Diagnostic {
	return resource.Diagnostic{Severity: resource.SeverityWarning,
		Summary: "NixOps4 provider",
		Detail: fmt.Sprintf("provider %s speaks NixOps4's protocol v0: this plan compares inputs (the provider cannot plan), changes made outside are not seen (no read), and what it makes is never deleted (no delete)",
			c.spec.Name)}
}

// Plan compares the desired inputs with the recorded ones.
func (c *Client) Plan(_ context.Context, req resource.PlanRequest) (*resource.PlanResponse, error) {
	_, t, err := c.typeOf(req.Type)
	if err != nil {
		return &resource.PlanResponse{Diagnostics: errorDiags("unknown resource type", err)}, nil
	}
	desired, ds := inputsOf(t, req.Desired.JSON)
	if ds.HasError() {
		return &resource.PlanResponse{Diagnostics: ds}, nil
	}
	resp := &resource.PlanResponse{PlannedOutputs: json.RawMessage("{}")}
	if req.Prior == nil || !hasObject(req.Prior.Outputs.JSON) {
		resp.Action = resource.ActionCreate
		resp.UnknownOutputs = t.Outputs
		resp.Diagnostics = resource.Diagnostics{c.limits()}
		return resp, nil
	}
	prior, _ := inputsOf(t, req.Prior.Inputs.JSON)
	resp.Changed = changed(prior, desired, req.Unknown)
	if len(resp.Changed) == 0 {
		resp.Action = resource.ActionNoop
		resp.PlannedOutputs = req.Prior.Outputs.JSON
		return resp, nil
	}
	resp.UnknownOutputs = t.Outputs
	resp.Diagnostics = resource.Diagnostics{c.limits()}
	if t.RequireState {
		resp.Action = resource.ActionUpdate
		return resp, nil
	}
	resp.Action = resource.ActionReplace
	resp.RequiresReplace = resp.Changed
	resp.Diagnostics = append(resp.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning,
		Summary: "replaced by a new create",
		Detail:  "the type is not declared requireState, so NixOps4 would not update it: it is created again, and the old one is left in place (v0 has no delete)"})
	return resp, nil
}

// changed lists the top-level inputs whose values differ, or are unknown.
func changed(prior, desired map[string]json.RawMessage, unknown []resource.Path) []resource.Path {
	names := map[string]bool{}
	for n := range prior {
		names[n] = true
	}
	for n := range desired {
		names[n] = true
	}
	var out []resource.Path
	for _, n := range sortedKeys(names) {
		p := resource.AttrPath(n)
		if resource.Covered(p, unknown) || anyUnder(p, unknown) || !sameJSON(prior[n], desired[n]) {
			out = append(out, p)
		}
	}
	return out
}

// anyUnder reports whether an unknown path lies within p.
func anyUnder(p resource.Path, unknown []resource.Path) bool {
	for _, u := range unknown {
		if len(u) > 0 && resource.Covered(u, []resource.Path{p}) {
			return true
		}
	}
	return false
}

func sameJSON(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

func hasObject(doc json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(doc, &m) == nil && m != nil
}

// Create sends a createResourceRequest.
func (c *Client) Create(ctx context.Context, req resource.CreateRequest, sink resource.EventSink) (*resource.Result, error) {
	name, t, err := c.typeOf(req.Type)
	if err != nil {
		return &resource.Result{Diagnostics: errorDiags("unknown resource type", err)}, nil
	}
	resp, err := c.roundTrip(ctx, &wire.Request{CreateResourceRequest: &wire.CreateResourceRequest{
		Type: name, InputProperties: req.Inputs.JSON, IsStateful: t.RequireState}}, sink)
	if err != nil {
		return nil, err
	}
	if resp.ErrorResponse != nil {
		return &resource.Result{Diagnostics: resource.Diagnostics{resource.Error(nil, "the provider refused the create", "%s", resp.ErrorResponse.Message)}}, nil
	}
	if resp.CreateResourceResponse == nil {
		return &resource.Result{Diagnostics: resource.Diagnostics{resource.Error(nil, "the provider answered a create with a "+resp.Kind(), "")}}, nil
	}
	return c.result(t, resp.CreateResourceResponse.OutputProperties, nil), nil
}

// Update sends an updateResourceRequest with the recorded inputs and
// outputs; a failure keeps them.
func (c *Client) Update(ctx context.Context, req resource.UpdateRequest, sink resource.EventSink) (*resource.Result, error) {
	keep := func(ds resource.Diagnostics) *resource.Result {
		return &resource.Result{HasState: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: ds}
	}
	name, t, err := c.typeOf(req.Type)
	if err != nil {
		return keep(errorDiags("unknown resource type", err)), nil
	}
	if !t.RequireState {
		return keep(resource.Diagnostics{resource.Error(nil, "not updatable", "type %s is not declared requireState; NixOps4 providers update only stateful resources", req.Type)}), nil
	}
	resp, err := c.roundTrip(ctx, &wire.Request{UpdateResourceRequest: &wire.UpdateResourceRequest{
		Resource:        wire.ExtantResource{Type: name, InputProperties: req.Prior.Inputs.JSON, OutputProperties: req.Prior.Outputs.JSON},
		InputProperties: req.Inputs.JSON}}, sink)
	if err != nil {
		return nil, err
	}
	if resp.ErrorResponse != nil {
		return keep(resource.Diagnostics{resource.Error(nil, "the provider refused the update", "%s", resp.ErrorResponse.Message)}), nil
	}
	if resp.UpdateResourceResponse == nil {
		return keep(resource.Diagnostics{resource.Error(nil, "the provider answered an update with a "+resp.Kind(), "")}), nil
	}
	return c.result(t, resp.UpdateResourceResponse.OutputProperties, &req.Prior), nil
}

// result records the declared outputs of an answer. An answer without a
// declared output is an error; with prior (an update) the prior state is
// kept then.
func (c *Client) result(t Type, doc json.RawMessage, prior *resource.State) *resource.Result {
	fail := func(summary, detailf string, args ...any) *resource.Result {
		r := &resource.Result{Diagnostics: resource.Diagnostics{resource.Error(nil, summary, detailf, args...)}}
		if prior != nil {
			r.HasState, r.Outputs, r.Private = true, prior.Outputs, prior.Private
		}
		return r
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(doc, &got); err != nil || got == nil {
		return fail("the provider's outputProperties are not an object", "%s", doc)
	}
	kept := make(map[string]json.RawMessage, len(t.Outputs))
	var missing []string
	for _, o := range t.Outputs {
		v, ok := got[o]
		if !ok {
			missing = append(missing, o)
			continue
		}
		kept[o] = v
	}
	if len(missing) > 0 {
		return fail("declared outputs missing", "the provider answered without %s (it answered %s)", strings.Join(missing, ", "), strings.Join(sortedKeys(got), ", "))
	}
	b, _ := json.Marshal(kept)
	return &resource.Result{HasState: true, Outputs: resource.Values{JSON: b}}
}

// Delete forgets the resource: v0 has no delete, so what the provider made
// is left in place, and the result says so.
func (c *Client) Delete(_ context.Context, req resource.DeleteRequest, _ resource.EventSink) (*resource.Result, error) {
	what := "forgotten"
	if req.Replacing {
		what = "replaced by a new create"
	}
	return &resource.Result{Diagnostics: resource.Diagnostics{{Severity: resource.SeverityWarning,
		Summary: "not deleted",
		Detail:  fmt.Sprintf("provider %s speaks NixOps4's protocol v0, which has no delete: the resource is %s, and whatever it made is left in place", c.spec.Name, what)}}}, nil
}

// Read reports the recorded outputs: v0 cannot look.
func (c *Client) Read(_ context.Context, req resource.ReadRequest) (*resource.ReadResponse, error) {
	return &resource.ReadResponse{Exists: hasObject(req.Prior.Outputs.JSON), Outputs: req.Prior.Outputs, Private: req.Prior.Private}, nil
}

// roundTrip sends a request to the provider's process, starting it if it
// is not running (first use, or it died or was stopped).
func (c *Client) roundTrip(ctx context.Context, req *wire.Request, sink resource.EventSink) (*wire.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.killed {
		return nil, fmt.Errorf("provider %s is stopped", c.spec.Name)
	}
	if c.proc != nil && !c.proc.usable() {
		c.proc.stop()
		c.proc = nil
	}
	if c.proc == nil {
		p, err := startProcess(c.spec)
		if err != nil {
			return nil, err
		}
		c.proc = p
	}
	resp, err := c.proc.roundTrip(ctx, req, sink)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("provider %s: %w", c.spec.Name, err)
	}
	return resp, nil
}

// Kill stops the provider's process: its stdin is closed (a v0 provider
// exits then) and its process group killed if it has not exited in a few
// seconds. The client serves no more requests.
func (c *Client) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killed = true
	if c.proc != nil {
		c.proc.stop()
		c.proc = nil
	}
}

// Exited reports whether the client was stopped. A provider process that
// died is started again by the next request.
func (c *Client) Exited() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed
}

// ExplainFailure returns err: the client's errors already say what the
// process last wrote.
func (c *Client) ExplainFailure(err error) error { return err }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
