package plugin

import (
	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// This file converts between the generated wire types and the Go API types
// of package resource. Nothing else touches the generated types.

func pathToProto(p resource.Path) *resourcev1.AttributePath {
	if p == nil {
		return nil
	}
	out := &resourcev1.AttributePath{Steps: make([]*resourcev1.PathStep, len(p))}
	for i, s := range p {
		switch s.Kind {
		case resource.StepAttribute:
			out.Steps[i] = &resourcev1.PathStep{Selector: &resourcev1.PathStep_AttributeName{AttributeName: s.Name}}
		case resource.StepKey:
			out.Steps[i] = &resourcev1.PathStep{Selector: &resourcev1.PathStep_ElementKey{ElementKey: s.Key}}
		case resource.StepIndex:
			out.Steps[i] = &resourcev1.PathStep{Selector: &resourcev1.PathStep_ElementIndex{ElementIndex: int64(s.Index)}}
		}
	}
	return out
}

func pathFromProto(p *resourcev1.AttributePath) resource.Path {
	if p == nil {
		return nil
	}
	out := make(resource.Path, 0, len(p.Steps))
	for _, s := range p.Steps {
		switch sel := s.Selector.(type) {
		case *resourcev1.PathStep_AttributeName:
			out = out.Attr(sel.AttributeName)
		case *resourcev1.PathStep_ElementKey:
			out = out.Key(sel.ElementKey)
		case *resourcev1.PathStep_ElementIndex:
			out = out.Index(int(sel.ElementIndex))
		}
	}
	return out
}

func pathsToProto(ps []resource.Path) []*resourcev1.AttributePath {
	out := make([]*resourcev1.AttributePath, len(ps))
	for i, p := range ps {
		out[i] = pathToProto(p)
	}
	return out
}

func pathsFromProto(ps []*resourcev1.AttributePath) []resource.Path {
	if len(ps) == 0 {
		return nil
	}
	out := make([]resource.Path, len(ps))
	for i, p := range ps {
		out[i] = pathFromProto(p)
	}
	return out
}

func diagsToProto(ds resource.Diagnostics) []*resourcev1.Diagnostic {
	out := make([]*resourcev1.Diagnostic, len(ds))
	for i, d := range ds {
		sev := resourcev1.Severity_SEVERITY_ERROR
		if d.Severity == resource.SeverityWarning {
			sev = resourcev1.Severity_SEVERITY_WARNING
		}
		out[i] = &resourcev1.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Attribute: pathToProto(d.Attribute)}
	}
	return out
}

func diagsFromProto(ds []*resourcev1.Diagnostic) resource.Diagnostics {
	if len(ds) == 0 {
		return nil
	}
	out := make(resource.Diagnostics, len(ds))
	for i, d := range ds {
		sev := resource.SeverityError
		if d.Severity == resourcev1.Severity_SEVERITY_WARNING {
			sev = resource.SeverityWarning
		}
		out[i] = resource.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Attribute: pathFromProto(d.Attribute)}
	}
	return out
}

func valuesToProto(v resource.Values) *resourcev1.Values {
	return &resourcev1.Values{Json: v.JSON, Sensitive: pathsToProto(v.Sensitive)}
}

func valuesFromProto(v *resourcev1.Values) resource.Values {
	if v == nil {
		return resource.Values{}
	}
	return resource.Values{JSON: v.Json, Sensitive: pathsFromProto(v.Sensitive)}
}

func stateToProto(s *resource.State) *resourcev1.State {
	if s == nil {
		return nil
	}
	return &resourcev1.State{Inputs: valuesToProto(s.Inputs), Outputs: valuesToProto(s.Outputs), Private: s.Private, SchemaVersion: s.SchemaVersion}
}

func stateFromProto(s *resourcev1.State) *resource.State {
	if s == nil {
		return nil
	}
	return &resource.State{Inputs: valuesFromProto(s.Inputs), Outputs: valuesFromProto(s.Outputs), Private: s.Private, SchemaVersion: s.SchemaVersion}
}

func attrsToProto(as []resource.Attribute) []*resourcev1.Attribute {
	out := make([]*resourcev1.Attribute, len(as))
	for i, a := range as {
		out[i] = &resourcev1.Attribute{
			Name: a.Name, Type: a.Type, Required: a.Required, DefaultJson: a.Default,
			Sensitive: a.Sensitive, Description: a.Description, ForceNew: a.ForceNew,
			Attributes: attrsToProto(a.Attributes),
		}
	}
	return out
}

func attrsFromProto(as []*resourcev1.Attribute) []resource.Attribute {
	if len(as) == 0 {
		return nil
	}
	out := make([]resource.Attribute, len(as))
	for i, a := range as {
		out[i] = resource.Attribute{
			Name: a.Name, Type: a.Type, Required: a.Required, Default: a.DefaultJson,
			Sensitive: a.Sensitive, Description: a.Description, ForceNew: a.ForceNew,
			Attributes: attrsFromProto(a.Attributes),
		}
	}
	return out
}

func schemaToProto(s *resource.ProviderSchema) *resourcev1.GetSchemaResponse {
	out := &resourcev1.GetSchemaResponse{
		ProviderName: s.Name, ProviderVersion: s.Version,
		ResourceTypes: make(map[string]*resourcev1.ResourceSchema, len(s.Types)),
		Diagnostics:   diagsToProto(s.Diagnostics),
	}
	for name, t := range s.Types {
		out.ResourceTypes[name] = &resourcev1.ResourceSchema{Description: t.Description, Inputs: attrsToProto(t.Inputs), Outputs: attrsToProto(t.Outputs), Version: t.Version}
	}
	return out
}

func schemaFromProto(s *resourcev1.GetSchemaResponse) *resource.ProviderSchema {
	out := &resource.ProviderSchema{
		Name: s.ProviderName, Version: s.ProviderVersion,
		Types:       make(map[string]*resource.TypeSchema, len(s.ResourceTypes)),
		Diagnostics: diagsFromProto(s.Diagnostics),
	}
	for name, t := range s.ResourceTypes {
		out.Types[name] = &resource.TypeSchema{Description: t.Description, Inputs: attrsFromProto(t.Inputs), Outputs: attrsFromProto(t.Outputs), Version: t.Version}
	}
	return out
}

func resultToProto(r *resource.Result) *resourcev1.Result {
	return &resourcev1.Result{HasState: r.HasState, Outputs: valuesToProto(r.Outputs), Private: r.Private, Diagnostics: diagsToProto(r.Diagnostics), SchemaVersion: r.SchemaVersion}
}

func resultFromProto(r *resourcev1.Result) *resource.Result {
	return &resource.Result{HasState: r.HasState, Outputs: valuesFromProto(r.Outputs), Private: r.Private, Diagnostics: diagsFromProto(r.Diagnostics), SchemaVersion: r.SchemaVersion}
}

func readResponseToProto(r *resource.ReadResponse) *resourcev1.ReadResponse {
	return &resourcev1.ReadResponse{
		Exists: r.Exists, Outputs: valuesToProto(r.Outputs), Private: r.Private, Diagnostics: diagsToProto(r.Diagnostics),
		SchemaVersion: r.SchemaVersion, UpgradedPrior: stateToProto(r.UpgradedPrior),
	}
}

func readResponseFromProto(r *resourcev1.ReadResponse) *resource.ReadResponse {
	return &resource.ReadResponse{
		Exists: r.Exists, Outputs: valuesFromProto(r.Outputs), Private: r.Private, Diagnostics: diagsFromProto(r.Diagnostics),
		SchemaVersion: r.SchemaVersion, UpgradedPrior: stateFromProto(r.UpgradedPrior),
	}
}

func planRequestToProto(req resource.PlanRequest) *resourcev1.PlanRequest {
	return &resourcev1.PlanRequest{
		Type: req.Type, Name: req.Name, Prior: stateToProto(req.Prior),
		Desired: valuesToProto(req.Desired), Unknown: pathsToProto(req.Unknown), Describe: req.Describe,
	}
}

func planRequestFromProto(req *resourcev1.PlanRequest) resource.PlanRequest {
	return resource.PlanRequest{
		Type: req.Type, Name: req.Name, Prior: stateFromProto(req.Prior),
		Desired: valuesFromProto(req.Desired), Unknown: pathsFromProto(req.Unknown), Describe: req.Describe,
	}
}

func planResponseToProto(r *resource.PlanResponse) *resourcev1.PlanResponse {
	return &resourcev1.PlanResponse{
		Action:             resourcev1.Action(r.Action),
		Changed:            pathsToProto(r.Changed),
		RequiresReplace:    pathsToProto(r.RequiresReplace),
		PlannedOutputsJson: r.PlannedOutputs,
		UnknownOutputs:     r.UnknownOutputs,
		Diagnostics:        diagsToProto(r.Diagnostics),
		Claims:             r.Claims,
		Details:            detailsToProto(r.Details),
	}
}

func planResponseFromProto(r *resourcev1.PlanResponse) *resource.PlanResponse {
	return &resource.PlanResponse{
		Action:          resource.Action(r.Action),
		Changed:         pathsFromProto(r.Changed),
		RequiresReplace: pathsFromProto(r.RequiresReplace),
		PlannedOutputs:  r.PlannedOutputsJson,
		UnknownOutputs:  r.UnknownOutputs,
		Diagnostics:     diagsFromProto(r.Diagnostics),
		Claims:          r.Claims,
		Details:         detailsFromProto(r.Details),
	}
}

func readRequestToProto(req resource.ReadRequest) *resourcev1.ReadRequest {
	return &resourcev1.ReadRequest{Type: req.Type, Name: req.Name, Prior: stateToProto(&req.Prior)}
}
