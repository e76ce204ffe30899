package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/providerset"
	"github.com/landscaper-nix/landscaper/proto/plugin"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

var providersSpec = spec{name: "providers", max: 0, about: `Start each provider found next to landscaper and on PATH (binaries named
landscaper-provider-*), and those the deployment declares (./landscaper.nix,
--file or --flake, when there is one: built first), and print its schema:
its resource types with their inputs and outputs, and where its binary
comes from. A provider the deployment declares replaces the built-in one
of the same name, as in plan and apply.`}

// listedProvider is one provider to list: its binary and where it was
// found.
type listedProvider struct {
	path, origin string
}

// runProviders prints the schemas of the built-in providers and of those
// the deployment declares.
func runProviders(ctx context.Context, args []string, env Env) error {
	fs := providersSpec.flags()
	asJSON := fs.Bool("json", false, "print the schemas as JSON")
	c := newCommon()
	c.sourceFlags(fs, "whose providers to list too")
	c.traceFlag(fs)
	noColorFlag(fs, &env)
	if _, err := providersSpec.parse(fs, args, env); err != nil {
		return err
	}
	listed := map[string]listedProvider{}
	for n, path := range providerset.Discover() {
		listed[n] = listedProvider{path: path, origin: "built in: found next to landscaper or on PATH"}
	}
	declared, err := declaredProviders(ctx, &c)
	if err != nil {
		return err
	}
	for n, path := range declared {
		listed[n] = listedProvider{path: path, origin: "declared by the deployment (providers." + n + ")"}
	}
	names := make([]string, 0, len(listed))
	for n := range listed {
		names = append(names, n)
	}
	sort.Strings(names)
	set := providerset.New(pluginLogger(env))
	defer set.Close()
	all := map[string]any{}
	for _, n := range names {
		lp := listed[n]
		schema, err := set.Add(ctx, n, lp.path)
		if err != nil {
			return err
		}
		if *asJSON {
			j := schemaJSON(schema, lp.path)
			j["origin"] = lp.origin
			all[n] = j
			continue
		}
		printSchema(env, n, lp, schema)
	}
	if *asJSON {
		return writeJSON(env, all)
	}
	if len(names) == 0 {
		fmt.Fprintln(env.Stdout, "No providers found next to landscaper or on PATH (binaries named landscaper-provider-*), and no deployment declares any.")
	}
	return nil
}

// declaredProviders evaluates the providers the deployment declares (none
// when there is no deployment here and none was named) and builds them.
func declaredProviders(ctx context.Context, c *common) (map[string]string, error) {
	src, _, err := c.source()
	if errors.Is(err, eval.ErrNoDeployment) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ev, err := eval.New(src)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	decl, err := ev.DeclaredProviders(ctx, eval.Types{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for n, d := range decl {
		if err := ev.Realise(ctx, d.Context); err != nil {
			return nil, fmt.Errorf("provider %s: %w", n, err)
		}
		out[n] = d.Executable
	}
	return out, nil
}

func printSchema(env Env, name string, lp listedProvider, s *resource.ProviderSchema) {
	fmt.Fprintf(env.Stdout, "provider %s %s (%s)\n  %s\n", name, s.Version, lp.path, lp.origin)
	types := make([]string, 0, len(s.Types))
	for t := range s.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		ts := s.Types[t]
		fmt.Fprintf(env.Stdout, "\n  %s.%s: %s\n", name, t, ts.Description)
		fmt.Fprintln(env.Stdout, "    inputs:")
		printAttrs(env, ts.Inputs, "      ")
		fmt.Fprintln(env.Stdout, "    outputs:")
		printAttrs(env, ts.Outputs, "      ")
	}
	fmt.Fprintln(env.Stdout)
}

// printAttrs prints attributes one a line, and under each the attributes
// of its object (or of each element of its list or map of objects),
// indented further and named ".name".
func printAttrs(env Env, attrs []resource.Attribute, indent string) {
	for _, a := range attrs {
		fmt.Fprintf(env.Stdout, "%s%-18s %-14s %s%s\n", indent, a.Name, a.Type, attrFlags(a), a.Description)
		if len(a.Attributes) > 0 {
			nested := make([]resource.Attribute, len(a.Attributes))
			for i, sub := range a.Attributes {
				sub.Name = "." + sub.Name
				nested[i] = sub
			}
			printAttrs(env, nested, indent+"  ")
		}
	}
}

func attrFlags(a resource.Attribute) string {
	var f []string
	if a.Required {
		f = append(f, "required")
	}
	if len(a.Default) > 0 {
		f = append(f, "default "+string(a.Default))
	}
	if a.Sensitive {
		f = append(f, "sensitive")
	}
	if a.ForceNew {
		f = append(f, "forces replacement")
	}
	if len(f) == 0 {
		return ""
	}
	return "[" + strings.Join(f, ", ") + "] "
}

func schemaJSON(s *resource.ProviderSchema, path string) map[string]any {
	types := map[string]any{}
	for t, ts := range s.Types {
		types[t] = map[string]any{"description": ts.Description, "inputs": attrsJSON(ts.Inputs), "outputs": attrsJSON(ts.Outputs)}
	}
	return map[string]any{"name": s.Name, "version": s.Version, "path": path, "types": types}
}

// attrJSON is an attribute as `provider schema` prints it.
type attrJSON struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Required    bool            `json:"required,omitempty"`
	Default     json.RawMessage `json:"default,omitempty"`
	Sensitive   bool            `json:"sensitive,omitempty"`
	ForceNew    bool            `json:"forces_replacement,omitempty"`
	Description string          `json:"description,omitempty"`
	// Attributes are those of an object, or of each element of a list or
	// map of objects.
	Attributes []attrJSON `json:"attributes,omitempty"`
}

func attrsJSON(as []resource.Attribute) []attrJSON {
	out := make([]attrJSON, len(as))
	for i, a := range as {
		out[i] = attrJSON{a.Name, a.Type, a.Required, a.Default, a.Sensitive, a.ForceNew, a.Description, attrsJSON(a.Attributes)}
	}
	return out
}

// callRecord is what `provider call` prints and reads back as --prior.
type callRecord struct {
	Action      string            `json:"action,omitempty"`
	Exists      *bool             `json:"exists,omitempty"`
	Inputs      json.RawMessage   `json:"inputs,omitempty"`
	Outputs     json.RawMessage   `json:"outputs,omitempty"`
	Sensitive   []resource.Path   `json:"sensitiveOutputs,omitempty"`
	Private     []byte            `json:"private,omitempty"`
	Diagnostics []json.RawMessage `json:"diagnostics,omitempty"`
}

// providerGroup is "landscaper provider" and its subcommands.
var providerGroup = group{name: "provider", about: "Drive one provider by hand, without a deployment or a state.", subs: []spec{
	{name: "provider schema", short: "print one provider's schema as JSON", args: "NAME|PATH", min: 1, max: 1, about: "Start one provider (by name, or the path of its binary) and print its schema\nas JSON."},
	{name: "provider call", short: "call one operation of one provider", args: "NAME|PATH validate|plan|create|update|delete|read", min: 2, max: 2, about: `Call one operation of one provider (by name, or the path of its binary) and
print the result as JSON; feed it back with --prior for update, delete and
read.`},
}}

// runProvider drives one provider by hand.
func runProvider(ctx context.Context, args []string, env Env) error {
	sp, rest, err := providerGroup.dispatch(args, env)
	if err != nil {
		return err
	}
	sub := strings.TrimPrefix(sp.name, "provider ")
	fs := sp.flags()
	var typ, name, inputs, prior *string
	var showSensitive *bool
	if sub == "call" {
		typ = fs.String("type", "", "the resource `type` (e.g. file or local.file); required")
		name = fs.String("name", "manual", "the member `name` to report")
		inputs = fs.String("inputs", "{}", "the inputs as JSON, or @FILE")
		prior = fs.String("prior", "", "the prior state as printed by an earlier call, as JSON or @FILE")
		showSensitive = fs.Bool("show-sensitive", false, "print sensitive outputs")
	}
	noColorFlag(fs, &env)
	positional, err := sp.parse(fs, rest, env)
	if err != nil {
		return err
	}
	if sub == "call" && *typ == "" {
		return &exitError{code: 2, err: errors.New("provider call needs --type")}
	}
	path := positional[0]
	if !strings.Contains(path, "/") {
		found := providerset.Discover()
		p, ok := found[path]
		if !ok {
			return fmt.Errorf("provider %s not found next to landscaper or on PATH", path)
		}
		path = p
	}
	client, err := plugin.Launch(ctx, path, plugin.LaunchOptions{Logger: pluginLogger(env)})
	if err != nil {
		return err
	}
	defer client.Kill()
	schema, err := client.GetSchema(ctx)
	if err != nil {
		return err
	}
	if sub == "schema" {
		return writeJSON(env, schemaJSON(schema, path))
	}
	op := positional[1]
	fullType := *typ
	if !strings.Contains(fullType, ".") {
		fullType = schema.Name + "." + fullType
	}
	in, err := jsonArg(*inputs)
	if err != nil {
		return fmt.Errorf("--inputs: %w", err)
	}
	var priorState *resource.State
	if *prior != "" {
		raw, err := jsonArg(*prior)
		if err != nil {
			return fmt.Errorf("--prior: %w", err)
		}
		var rec callRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("--prior: %w", err)
		}
		priorState = &resource.State{Inputs: resource.Values{JSON: rec.Inputs}, Outputs: resource.Values{JSON: rec.Outputs, Sensitive: rec.Sensitive}, Private: rec.Private}
	}
	needPrior := op == "update" || op == "delete" || op == "read"
	if needPrior && priorState == nil {
		return &exitError{code: 2, err: fmt.Errorf("%s needs --prior (the output of an earlier create)", op)}
	}
	sink := stderrSink{env: env, name: *name}
	values := resource.Values{JSON: in}
	out := callRecord{Inputs: in}
	var diags resource.Diagnostics
	var result *resource.Result
	switch op {
	case "validate":
		diags, err = client.Validate(ctx, resource.ValidateRequest{Type: fullType, Name: *name, Inputs: values})
	case "plan":
		var r *resource.PlanResponse
		r, err = client.Plan(ctx, resource.PlanRequest{Type: fullType, Name: *name, Prior: priorState, Desired: values, Describe: true})
		if err == nil {
			diags, out.Action, out.Outputs = r.Diagnostics, r.Action.String(), r.PlannedOutputs
		}
	case "create":
		result, err = client.Create(ctx, resource.CreateRequest{Type: fullType, Name: *name, Inputs: values}, sink)
	case "update":
		result, err = client.Update(ctx, resource.UpdateRequest{Type: fullType, Name: *name, Prior: *priorState, Inputs: values}, sink)
	case "delete":
		out.Inputs = nil
		result, err = client.Delete(ctx, resource.DeleteRequest{Type: fullType, Name: *name, Prior: *priorState}, sink)
	case "read":
		var r *resource.ReadResponse
		r, err = client.Read(ctx, resource.ReadRequest{Type: fullType, Name: *name, Prior: *priorState})
		if err == nil {
			exists := r.Exists
			diags, out.Exists, out.Inputs = r.Diagnostics, &exists, priorState.Inputs.JSON
			out.Outputs, out.Sensitive, out.Private = r.Outputs.JSON, r.Outputs.Sensitive, r.Private
		}
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown operation %q", op)}
	}
	if err != nil {
		return client.ExplainFailure(err)
	}
	if result != nil {
		diags = result.Diagnostics
		out.Outputs, out.Sensitive, out.Private = result.Outputs.JSON, result.Outputs.Sensitive, result.Private
	}
	if !*showSensitive && len(out.Outputs) > 0 {
		if b, err := json.Marshal(masked(out.Outputs, out.Sensitive, false)); err == nil {
			out.Outputs = b
		}
	}
	for _, d := range diags {
		b, _ := json.Marshal(map[string]string{"severity": map[resource.Severity]string{resource.SeverityError: "error", resource.SeverityWarning: "warning"}[d.Severity], "summary": d.Summary, "detail": d.Detail, "attribute": d.Attribute.String()})
		out.Diagnostics = append(out.Diagnostics, b)
	}
	if err := writeJSON(env, out); err != nil {
		return err
	}
	if diags.HasError() {
		return &exitError{code: 1}
	}
	return nil
}

func jsonArg(v string) (json.RawMessage, error) {
	if strings.HasPrefix(v, "@") {
		b, err := os.ReadFile(v[1:])
		if err != nil {
			return nil, err
		}
		v = string(b)
	}
	if !json.Valid([]byte(v)) {
		return nil, errors.New("not valid JSON")
	}
	return json.RawMessage(v), nil
}

type stderrSink struct {
	env  Env
	name string
}

func (s stderrSink) Log(text string) { fmt.Fprintf(s.env.Stderr, "%s: %s\n", s.name, text) }
func (s stderrSink) Progress(message string, fraction float64) {
	fmt.Fprintf(s.env.Stderr, "%s: %s (%.0f%%)\n", s.name, message, fraction*100)
}
