package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// grpcServer serves a resource.Provider over gRPC. A panic inside the
// provider becomes an error diagnostic that names the resource, so one bad
// resource does not take the other in-flight operations down with it.
type grpcServer struct {
	resourcev1.UnimplementedProviderServiceServer
	impl   resource.Provider
	logger hclog.Logger
}

func (s *grpcServer) recoverPanic(op, typ, name string, diags *resource.Diagnostics) {
	r := recover()
	if r == nil {
		return
	}
	s.logger.Error("provider panic", "operation", op, "type", typ, "resource", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*diags = append(*diags, resource.Diagnostic{
		Severity: resource.SeverityError,
		Summary:  fmt.Sprintf("provider panicked during %s of %s (%s)", op, name, typ),
		Detail:   fmt.Sprint(r),
	})
}

func (s *grpcServer) GetSchema(ctx context.Context, _ *resourcev1.GetSchemaRequest) (resp *resourcev1.GetSchemaResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("provider panicked in GetSchema: %v", r)
		}
	}()
	schema, err := s.impl.GetSchema(ctx)
	if err != nil {
		return nil, err
	}
	return schemaToProto(schema), nil
}

func (s *grpcServer) Validate(ctx context.Context, req *resourcev1.ValidateRequest) (*resourcev1.ValidateResponse, error) {
	var diags resource.Diagnostics
	err := func() error {
		defer s.recoverPanic("validate", req.Type, req.Name, &diags)
		d, err := s.impl.Validate(ctx, resource.ValidateRequest{Type: req.Type, Name: req.Name, Inputs: valuesFromProto(req.Inputs), Unknown: pathsFromProto(req.Unknown)})
		diags = append(diags, d...)
		return err
	}()
	if err != nil {
		return nil, err
	}
	return &resourcev1.ValidateResponse{Diagnostics: diagsToProto(diags)}, nil
}

func (s *grpcServer) Plan(ctx context.Context, req *resourcev1.PlanRequest) (resp *resourcev1.PlanResponse, err error) {
	var diags resource.Diagnostics
	defer func() {
		if len(diags) > 0 {
			resp = &resourcev1.PlanResponse{Diagnostics: diagsToProto(diags)}
			err = nil
		}
	}()
	defer s.recoverPanic("plan", req.Type, req.Name, &diags)
	r, err := s.impl.Plan(ctx, planRequestFromProto(req))
	if err != nil {
		return nil, err
	}
	return planResponseToProto(r), nil
}

// streamSink sends events on a server stream; providers may log from
// several goroutines, so sends are serialised.
type streamSink struct {
	mu   sync.Mutex
	send func(*resourcev1.Event) error
}

func (s *streamSink) Log(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.send(&resourcev1.Event{Event: &resourcev1.Event_Log{Log: &resourcev1.LogLine{Text: text}}})
}

func (s *streamSink) Progress(message string, fraction float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.send(&resourcev1.Event{Event: &resourcev1.Event_Progress{Progress: &resourcev1.Progress{Message: message, Fraction: fraction}}})
}

// runOperation runs one streaming operation and sends its result last.
func (s *grpcServer) runOperation(op, typ, name string, send func(*resourcev1.Event) error, call func(resource.EventSink) (*resource.Result, error)) error {
	sink := &streamSink{send: send}
	result, err := func() (result *resource.Result, err error) {
		var diags resource.Diagnostics
		defer func() {
			if len(diags) > 0 {
				result, err = &resource.Result{Diagnostics: diags}, nil
			}
		}()
		defer s.recoverPanic(op, typ, name, &diags)
		return call(sink)
	}()
	if err != nil {
		return err
	}
	if result == nil {
		result = &resource.Result{}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return send(&resourcev1.Event{Event: &resourcev1.Event_Result{Result: resultToProto(result)}})
}

func (s *grpcServer) Create(req *resourcev1.CreateRequest, stream resourcev1.ProviderService_CreateServer) error {
	send := func(e *resourcev1.Event) error { return stream.Send(&resourcev1.CreateResponse{Event: e}) }
	return s.runOperation("create", req.Type, req.Name, send, func(sink resource.EventSink) (*resource.Result, error) {
		res, err := s.impl.Create(stream.Context(), resource.CreateRequest{Type: req.Type, Name: req.Name, Inputs: valuesFromProto(req.Inputs)}, sink)
		return fitOperation("create", req.Type, req.Name, req.Inputs, nil, res), err
	})
}

func (s *grpcServer) Update(req *resourcev1.UpdateRequest, stream resourcev1.ProviderService_UpdateServer) error {
	send := func(e *resourcev1.Event) error { return stream.Send(&resourcev1.UpdateResponse{Event: e}) }
	return s.runOperation("update", req.Type, req.Name, send, func(sink resource.EventSink) (*resource.Result, error) {
		prior := stateFromProto(req.Prior)
		if prior == nil {
			prior = &resource.State{}
		}
		res, err := s.impl.Update(stream.Context(), resource.UpdateRequest{Type: req.Type, Name: req.Name, Prior: *prior, Inputs: valuesFromProto(req.Inputs)}, sink)
		return fitOperation("update", req.Type, req.Name, req.Inputs, req.GetPrior().GetInputs(), res), err
	})
}

func (s *grpcServer) Delete(req *resourcev1.DeleteRequest, stream resourcev1.ProviderService_DeleteServer) error {
	send := func(e *resourcev1.Event) error { return stream.Send(&resourcev1.DeleteResponse{Event: e}) }
	return s.runOperation("delete", req.Type, req.Name, send, func(sink resource.EventSink) (*resource.Result, error) {
		prior := stateFromProto(req.Prior)
		if prior == nil {
			prior = &resource.State{}
		}
		return s.impl.Delete(stream.Context(), resource.DeleteRequest{Type: req.Type, Name: req.Name, Prior: *prior, Replacing: req.Replacing}, sink)
	})
}

func (s *grpcServer) Read(ctx context.Context, req *resourcev1.ReadRequest) (resp *resourcev1.ReadResponse, err error) {
	var diags resource.Diagnostics
	defer func() {
		if len(diags) > 0 {
			resp = &resourcev1.ReadResponse{Exists: true, Diagnostics: diagsToProto(diags)}
			err = nil
		}
	}()
	defer s.recoverPanic("read", req.Type, req.Name, &diags)
	prior := stateFromProto(req.Prior)
	if prior == nil {
		prior = &resource.State{}
	}
	r, err := s.impl.Read(ctx, resource.ReadRequest{Type: req.Type, Name: req.Name, Prior: *prior})
	if err != nil {
		return nil, err
	}
	resp = readResponseToProto(r)
	return fitRead(req.Type, req.Name, req.Prior, resp), nil
}

// Prepare serves the optional Preparer interface; a provider without it
// prepares nothing.
func (s *grpcServer) Prepare(ctx context.Context, req *resourcev1.PrepareRequest) (resp *resourcev1.PrepareResponse, err error) {
	var diags resource.Diagnostics
	defer func() {
		if len(diags) > 0 {
			resp, err = &resourcev1.PrepareResponse{Diagnostics: diagsToProto(diags)}, nil
		}
	}()
	defer s.recoverPanic("prepare", req.Type, req.Name, &diags)
	p, ok := s.impl.(resource.Preparer)
	if !ok {
		return &resourcev1.PrepareResponse{}, nil
	}
	d, err := p.Prepare(ctx, resource.PrepareRequest{Type: req.Type, Name: req.Name, Prior: stateFromProto(req.Prior), Inputs: valuesFromProto(req.Inputs)})
	if err != nil {
		return nil, err
	}
	return &resourcev1.PrepareResponse{Diagnostics: diagsToProto(d)}, nil
}

// grpcClient implements resource.Provider by calling a plugin.
type grpcClient struct {
	client resourcev1.ProviderServiceClient
	// noBatch: the plugin answered a batch call UNIMPLEMENTED (built
	// before batches existed, or not with this SDK).
	noBatch atomic.Bool
}

var _ resource.Provider = (*grpcClient)(nil)

func (c *grpcClient) GetSchema(ctx context.Context) (*resource.ProviderSchema, error) {
	r, err := c.client.GetSchema(ctx, &resourcev1.GetSchemaRequest{})
	if err != nil {
		return nil, err
	}
	return schemaFromProto(r), nil
}

func (c *grpcClient) Validate(ctx context.Context, req resource.ValidateRequest) (resource.Diagnostics, error) {
	preq := &resourcev1.ValidateRequest{Type: req.Type, Name: req.Name, Inputs: valuesToProto(req.Inputs), Unknown: pathsToProto(req.Unknown)}
	if diags := fitRequest("validate", req.Type, req.Name, preq, nil); diags != nil {
		return diags, nil
	}
	r, err := c.client.Validate(ctx, preq)
	if err != nil {
		return nil, err
	}
	return diagsFromProto(r.Diagnostics), nil
}

func (c *grpcClient) Plan(ctx context.Context, req resource.PlanRequest) (*resource.PlanResponse, error) {
	preq := planRequestToProto(req)
	if diags := fitRequest("plan", req.Type, req.Name, preq, preq.Prior); diags != nil {
		return &resource.PlanResponse{Diagnostics: diags}, nil
	}
	r, err := c.client.Plan(ctx, preq)
	if err != nil {
		return nil, err
	}
	return planResponseFromProto(r), nil
}

// eventStream is what the three streaming clients have in common.
type eventStream[T interface{ GetEvent() *resourcev1.Event }] interface {
	Recv() (T, error)
}

func receive[T interface{ GetEvent() *resourcev1.Event }](stream eventStream[T], sink resource.EventSink) (*resource.Result, error) {
	if sink == nil {
		sink = resource.DiscardEvents{}
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("provider closed the operation without a result")
		}
		if err != nil {
			return nil, err
		}
		switch e := msg.GetEvent().GetEvent().(type) {
		case *resourcev1.Event_Log:
			sink.Log(e.Log.Text)
		case *resourcev1.Event_Progress:
			sink.Progress(e.Progress.Message, e.Progress.Fraction)
		case *resourcev1.Event_Result:
			return resultFromProto(e.Result), nil
		}
	}
}

// Create, Update, Delete and Read refuse a request too large to send with
// an error diagnostic (the engine then knows nothing happened), and
// Create, Update and Read a result too large to send back later (see
// fitResult): the provider may be one built before the limit.

func (c *grpcClient) Create(ctx context.Context, req resource.CreateRequest, sink resource.EventSink) (*resource.Result, error) {
	preq := &resourcev1.CreateRequest{Type: req.Type, Name: req.Name, Inputs: valuesToProto(req.Inputs)}
	if diags := fitRequest("create", req.Type, req.Name, preq, nil); diags != nil {
		return &resource.Result{Diagnostics: diags}, nil
	}
	stream, err := c.client.Create(ctx, preq)
	if err != nil {
		return nil, err
	}
	res, err := receive(stream, sink)
	if err != nil {
		return nil, err
	}
	return fitOperation("create", req.Type, req.Name, preq.Inputs, nil, res), nil
}

func (c *grpcClient) Update(ctx context.Context, req resource.UpdateRequest, sink resource.EventSink) (*resource.Result, error) {
	preq := &resourcev1.UpdateRequest{Type: req.Type, Name: req.Name, Prior: stateToProto(&req.Prior), Inputs: valuesToProto(req.Inputs)}
	if diags := fitRequest("update", req.Type, req.Name, preq, preq.Prior); diags != nil {
		return &resource.Result{Diagnostics: diags}, nil
	}
	stream, err := c.client.Update(ctx, preq)
	if err != nil {
		return nil, err
	}
	res, err := receive(stream, sink)
	if err != nil {
		return nil, err
	}
	return fitOperation("update", req.Type, req.Name, preq.Inputs, preq.Prior.GetInputs(), res), nil
}

func (c *grpcClient) Delete(ctx context.Context, req resource.DeleteRequest, sink resource.EventSink) (*resource.Result, error) {
	preq := &resourcev1.DeleteRequest{Type: req.Type, Name: req.Name, Prior: stateToProto(&req.Prior), Replacing: req.Replacing}
	if diags := fitRequest("delete", req.Type, req.Name, preq, preq.Prior); diags != nil {
		return &resource.Result{Diagnostics: diags}, nil
	}
	stream, err := c.client.Delete(ctx, preq)
	if err != nil {
		return nil, err
	}
	return receive(stream, sink)
}

func (c *grpcClient) Read(ctx context.Context, req resource.ReadRequest) (*resource.ReadResponse, error) {
	preq := readRequestToProto(req)
	if diags := fitRequest("read", req.Type, req.Name, preq, preq.Prior); diags != nil {
		return &resource.ReadResponse{Exists: true, Diagnostics: diags}, nil
	}
	r, err := c.client.Read(ctx, preq)
	if err != nil {
		return nil, err
	}
	r = fitRead(req.Type, req.Name, preq.Prior, r)
	return readResponseFromProto(r), nil
}

var _ resource.Preparer = (*grpcClient)(nil)

// Prepare asks the plugin to prepare; a plugin built before Prepare
// existed answers UNIMPLEMENTED, which means nothing to prepare.
func (c *grpcClient) Prepare(ctx context.Context, req resource.PrepareRequest) (resource.Diagnostics, error) {
	preq := &resourcev1.PrepareRequest{Type: req.Type, Name: req.Name, Prior: stateToProto(req.Prior), Inputs: valuesToProto(req.Inputs)}
	if diags := fitRequest("prepare", req.Type, req.Name, preq, preq.Prior); diags != nil {
		return diags, nil
	}
	r, err := c.client.Prepare(ctx, preq)
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return diagsFromProto(r.Diagnostics), nil
}

// newGRPCClient wraps a connection to a plugin.
func newGRPCClient(conn *grpc.ClientConn) *grpcClient {
	return &grpcClient{client: resourcev1.NewProviderServiceClient(conn)}
}

func detailsToProto(d *resource.ChangeDetails) *resourcev1.ChangeDetails {
	if d == nil {
		return nil
	}
	return &resourcev1.ChangeDetails{Summary: d.Summary, Lines: d.Lines, Json: d.JSON}
}

func detailsFromProto(d *resourcev1.ChangeDetails) *resource.ChangeDetails {
	if d == nil {
		return nil
	}
	return &resource.ChangeDetails{Summary: d.Summary, Lines: d.Lines, JSON: d.Json}
}
