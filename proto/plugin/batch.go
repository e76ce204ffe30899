package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Batches (PlanBatch, ReadBatch) carry many plans or reads in one call.
// The engine splits its requests into batches of at most batchRequestBytes
// (one request larger than that goes alone); the provider streams the
// answers back grouped in messages of about batchAnswerBytes, as they
// finish.
const (
	batchRequestBytes = 256 << 10
	batchAnswerBytes  = 1 << 20
)

// PlanBatch serves a batch of plans: each is what Plan answers, panics
// included.
func (s *grpcServer) PlanBatch(req *resourcev1.PlanBatchRequest, stream resourcev1.ProviderService_PlanBatchServer) error {
	return serveBatch(stream.Context(), req.Requests, req.Parallelism, s.Plan,
		func(i int, resp *resourcev1.PlanResponse, err string) *resourcev1.PlanBatchResult {
			return &resourcev1.PlanBatchResult{Index: int32(i), Response: resp, Error: err}
		},
		func(rs []*resourcev1.PlanBatchResult) error {
			return stream.Send(&resourcev1.PlanBatchResponse{Results: rs})
		})
}

// ReadBatch serves a batch of reads, as PlanBatch plans.
func (s *grpcServer) ReadBatch(req *resourcev1.ReadBatchRequest, stream resourcev1.ProviderService_ReadBatchServer) error {
	return serveBatch(stream.Context(), req.Requests, req.Parallelism, s.Read,
		func(i int, resp *resourcev1.ReadResponse, err string) *resourcev1.ReadBatchResult {
			return &resourcev1.ReadBatchResult{Index: int32(i), Response: resp, Error: err}
		},
		func(rs []*resourcev1.ReadBatchResult) error {
			return stream.Send(&resourcev1.ReadBatchResponse{Results: rs})
		})
}

// serveBatch answers each request with call, at most parallelism at once,
// and sends the results as they finish (see sendGrouped); a call that
// fails is answered with its error's text.
func serveBatch[Req, Resp any, Result proto.Message](ctx context.Context, reqs []Req, parallelism int32, call func(context.Context, Req) (Resp, error), result func(int, Resp, string) Result, send func([]Result) error) error {
	results := make(chan Result)
	go func() {
		defer close(results)
		resource.ForEach(len(reqs), int(parallelism), func(i int) {
			resp, err := call(ctx, reqs[i])
			if err != nil {
				var none Resp
				results <- result(i, none, err.Error())
				return
			}
			results <- result(i, resp, "")
		})
	}()
	return sendGrouped(results, send)
}

// sendGrouped sends the results as they come, each message holding those
// ready by then (up to about batchAnswerBytes). It reads results until the
// channel is closed, even after a failed send, so no worker is left
// blocked.
func sendGrouped[T proto.Message](results <-chan T, send func([]T) error) error {
	var sendErr error
	for first := range results {
		group := []T{first}
		size := proto.Size(first)
	more:
		for size < batchAnswerBytes {
			select {
			case r, ok := <-results:
				if !ok {
					break more
				}
				group = append(group, r)
				size += proto.Size(r)
			default:
				break more
			}
		}
		if sendErr == nil {
			sendErr = send(group)
		}
	}
	return sendErr
}

var _ resource.Batcher = (*grpcClient)(nil)

// PlanBatch plans in batches; a plugin without batches gets one Plan call
// per request.
func (c *grpcClient) PlanBatch(ctx context.Context, reqs []resource.PlanRequest, parallelism int, each func(int, *resource.PlanResponse, error)) {
	clientBatch(ctx, c, reqs, parallelism, each, batchKind[resource.PlanRequest, *resource.PlanResponse, *resourcev1.PlanRequest, *resourcev1.PlanResponse, *resourcev1.PlanBatchResult]{
		single: c.Plan, toProto: planRequestToProto,
		fit: func(req resource.PlanRequest, preq *resourcev1.PlanRequest) (*resource.PlanResponse, bool) {
			if diags := fitRequest("plan", req.Type, req.Name, preq, preq.Prior); diags != nil {
				return &resource.PlanResponse{Diagnostics: diags}, false
			}
			return nil, true
		},
		open: func(ctx context.Context, preqs []*resourcev1.PlanRequest, parallelism int) (func() ([]*resourcev1.PlanBatchResult, error), error) {
			stream, err := c.client.PlanBatch(ctx, &resourcev1.PlanBatchRequest{Requests: preqs, Parallelism: int32(parallelism)})
			if err != nil {
				return nil, err
			}
			return func() ([]*resourcev1.PlanBatchResult, error) {
				msg, err := stream.Recv()
				return msg.GetResults(), err
			}, nil
		},
		fromProto: func(_ resource.PlanRequest, _ *resourcev1.PlanRequest, resp *resourcev1.PlanResponse) *resource.PlanResponse {
			return planResponseFromProto(resp)
		},
	})
}

// ReadBatch reads in batches, as PlanBatch plans.
func (c *grpcClient) ReadBatch(ctx context.Context, reqs []resource.ReadRequest, parallelism int, each func(int, *resource.ReadResponse, error)) {
	clientBatch(ctx, c, reqs, parallelism, each, batchKind[resource.ReadRequest, *resource.ReadResponse, *resourcev1.ReadRequest, *resourcev1.ReadResponse, *resourcev1.ReadBatchResult]{
		single: c.Read, toProto: readRequestToProto,
		fit: func(req resource.ReadRequest, preq *resourcev1.ReadRequest) (*resource.ReadResponse, bool) {
			if diags := fitRequest("read", req.Type, req.Name, preq, preq.Prior); diags != nil {
				return &resource.ReadResponse{Exists: true, Diagnostics: diags}, false
			}
			return nil, true
		},
		open: func(ctx context.Context, preqs []*resourcev1.ReadRequest, parallelism int) (func() ([]*resourcev1.ReadBatchResult, error), error) {
			stream, err := c.client.ReadBatch(ctx, &resourcev1.ReadBatchRequest{Requests: preqs, Parallelism: int32(parallelism)})
			if err != nil {
				return nil, err
			}
			return func() ([]*resourcev1.ReadBatchResult, error) {
				msg, err := stream.Recv()
				return msg.GetResults(), err
			}, nil
		},
		fromProto: func(req resource.ReadRequest, preq *resourcev1.ReadRequest, resp *resourcev1.ReadResponse) *resource.ReadResponse {
			return readResponseFromProto(fitRead(req.Type, req.Name, preq.Prior, resp))
		},
	})
}

// batchKind is what differs between batches of plans and of reads: Req
// and Resp are the Go API's request and answer, PReq and PResp the wire's,
// Result one answer of a batch on the wire.
type batchKind[Req, Resp any, PReq proto.Message, PResp any, Result interface {
	GetIndex() int32
	GetError() string
	GetResponse() PResp
}] struct {
	single func(context.Context, Req) (Resp, error)
	// fit answers a request too large to send (false), without sending it.
	fit       func(Req, PReq) (Resp, bool)
	toProto   func(Req) PReq
	open      func(ctx context.Context, preqs []PReq, parallelism int) (func() ([]Result, error), error)
	fromProto func(Req, PReq, PResp) Resp
}

// clientBatch sends reqs in batches (see runBatches), or one by one to a
// plugin without batches.
func clientBatch[Req, Resp any, PReq proto.Message, PResp any, Result interface {
	GetIndex() int32
	GetError() string
	GetResponse() PResp
}](ctx context.Context, c *grpcClient, reqs []Req, parallelism int, each func(int, Resp, error), k batchKind[Req, Resp, PReq, PResp, Result]) {
	one := func(i int) {
		resp, err := k.single(ctx, reqs[i])
		each(i, resp, err)
	}
	if c.noBatch.Load() {
		resource.ForEach(len(reqs), parallelism, one)
		return
	}
	preqs := make([]PReq, len(reqs))
	sizes := make([]int, len(reqs))
	var send []int
	for i, req := range reqs {
		preqs[i] = k.toProto(req)
		if resp, ok := k.fit(req, preqs[i]); !ok {
			each(i, resp, nil)
			continue
		}
		sizes[i] = proto.Size(preqs[i])
		send = append(send, i)
	}
	runBatches(ctx, c, send, sizes, parallelism,
		func(ctx context.Context, chunk []int, parallelism int) (func() ([]int, []PResp, []string, error), error) {
			batch := make([]PReq, len(chunk))
			for j, i := range chunk {
				batch[j] = preqs[i]
			}
			recv, err := k.open(ctx, batch, parallelism)
			if err != nil {
				return nil, err
			}
			return func() ([]int, []PResp, []string, error) {
				results, err := recv()
				if err != nil {
					return nil, nil, nil, err
				}
				idx, resps, errs := make([]int, len(results)), make([]PResp, len(results)), make([]string, len(results))
				for j, r := range results {
					idx[j], resps[j], errs[j] = int(r.GetIndex()), r.GetResponse(), r.GetError()
				}
				return idx, resps, errs, nil
			}, nil
		},
		func(i int, resp PResp, err error) {
			if err != nil {
				var none Resp
				each(i, none, err)
				return
			}
			each(i, k.fromProto(reqs[i], preqs[i], resp), nil)
		},
		one)
}

// runBatches sends the requests at the indexes in send, in batches of at
// most batchRequestBytes, and hands each answer to deliver with its
// request's index. The first batch goes alone: a plugin that answers it
// UNIMPLEMENTED is remembered as one without batches, and single calls
// (one) serve every request. The others go two at a time, each with half
// the parallelism, so that the engine prepares and reads one while the
// plugin works on the other. A batch that ends early (the plugin died,
// the context was cancelled) fails the requests it did not answer.
func runBatches[R any](
	ctx context.Context, c *grpcClient, send []int, sizes []int, parallelism int,
	open func(ctx context.Context, chunk []int, parallelism int) (func() ([]int, []R, []string, error), error),
	deliver func(i int, resp R, err error),
	one func(i int),
) {
	var chunks [][]int
	for start := 0; start < len(send); {
		end, total := start, 0
		for end < len(send) && (end == start || total+sizes[send[end]] <= batchRequestBytes) {
			total += sizes[send[end]]
			end++
		}
		chunks = append(chunks, send[start:end])
		start = end
	}
	if len(chunks) == 0 {
		return
	}
	run := func(chunk []int, parallelism int) (unimplemented bool) {
		answered := make(map[int]bool, len(chunk))
		err := func() error {
			callCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			recv, err := open(callCtx, chunk, parallelism)
			if err != nil {
				return err
			}
			for len(answered) < len(chunk) {
				idx, resps, errs, err := recv()
				if err != nil {
					return err
				}
				for j, pos := range idx {
					if pos < 0 || pos >= len(chunk) || answered[pos] {
						return fmt.Errorf("provider answered a batch with a wrong index %d", pos)
					}
					answered[pos] = true
					var callErr error
					if errs[j] != "" {
						callErr = status.Error(codes.Unknown, errs[j])
					}
					deliver(chunk[pos], resps[j], callErr)
				}
			}
			return nil
		}()
		if err == nil {
			return false
		}
		if status.Code(err) == codes.Unimplemented && len(answered) == 0 {
			return true
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("provider ended a batch without answering every request")
		}
		var zero R
		for pos, i := range chunk {
			if !answered[pos] {
				deliver(i, zero, err)
			}
		}
		return false
	}
	if run(chunks[0], parallelism) {
		c.noBatch.Store(true)
		resource.ForEach(len(send), parallelism, func(k int) { one(send[k]) })
		return
	}
	lanes := min(2, max(parallelism, 1))
	each := max(1, parallelism/lanes)
	resource.ForEach(len(chunks)-1, lanes, func(k int) {
		if run(chunks[k+1], each) {
			chunk := chunks[k+1]
			resource.ForEach(len(chunk), each, func(j int) { one(chunk[j]) })
		}
	})
}
