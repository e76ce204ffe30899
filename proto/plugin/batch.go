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
	ctx := stream.Context()
	results := make(chan *resourcev1.PlanBatchResult)
	go func() {
		defer close(results)
		resource.ForEach(len(req.Requests), int(req.Parallelism), func(i int) {
			r := &resourcev1.PlanBatchResult{Index: int32(i)}
			resp, err := s.Plan(ctx, req.Requests[i])
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Response = resp
			}
			results <- r
		})
	}()
	return sendGrouped(results, func(rs []*resourcev1.PlanBatchResult) error {
		return stream.Send(&resourcev1.PlanBatchResponse{Results: rs})
	})
}

// ReadBatch serves a batch of reads, as PlanBatch plans.
func (s *grpcServer) ReadBatch(req *resourcev1.ReadBatchRequest, stream resourcev1.ProviderService_ReadBatchServer) error {
	ctx := stream.Context()
	results := make(chan *resourcev1.ReadBatchResult)
	go func() {
		defer close(results)
		resource.ForEach(len(req.Requests), int(req.Parallelism), func(i int) {
			r := &resourcev1.ReadBatchResult{Index: int32(i)}
			resp, err := s.Read(ctx, req.Requests[i])
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Response = resp
			}
			results <- r
		})
	}()
	return sendGrouped(results, func(rs []*resourcev1.ReadBatchResult) error {
		return stream.Send(&resourcev1.ReadBatchResponse{Results: rs})
	})
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
	if c.noBatch.Load() {
		resource.ForEach(len(reqs), parallelism, func(i int) { resp, err := c.Plan(ctx, reqs[i]); each(i, resp, err) })
		return
	}
	preqs := make([]*resourcev1.PlanRequest, len(reqs))
	sizes := make([]int, len(reqs))
	var send []int
	for i, req := range reqs {
		preqs[i] = planRequestToProto(req)
		if diags := fitRequest("plan", req.Type, req.Name, preqs[i], preqs[i].Prior); diags != nil {
			each(i, &resource.PlanResponse{Diagnostics: diags}, nil)
			continue
		}
		sizes[i] = proto.Size(preqs[i])
		send = append(send, i)
	}
	runBatches(ctx, c, send, sizes, parallelism,
		func(ctx context.Context, chunk []int, parallelism int) (func() ([]int, []*resourcev1.PlanResponse, []string, error), error) {
			batch := &resourcev1.PlanBatchRequest{Parallelism: int32(parallelism)}
			for _, i := range chunk {
				batch.Requests = append(batch.Requests, preqs[i])
			}
			stream, err := c.client.PlanBatch(ctx, batch)
			if err != nil {
				return nil, err
			}
			return func() ([]int, []*resourcev1.PlanResponse, []string, error) {
				msg, err := stream.Recv()
				if err != nil {
					return nil, nil, nil, err
				}
				idx, resps, errs := make([]int, len(msg.Results)), make([]*resourcev1.PlanResponse, len(msg.Results)), make([]string, len(msg.Results))
				for j, r := range msg.Results {
					idx[j], resps[j], errs[j] = int(r.Index), r.Response, r.Error
				}
				return idx, resps, errs, nil
			}, nil
		},
		func(i int, resp *resourcev1.PlanResponse, err error) {
			if err != nil {
				each(i, nil, err)
				return
			}
			each(i, planResponseFromProto(resp), nil)
		},
		func(i int) { resp, err := c.Plan(ctx, reqs[i]); each(i, resp, err) })
}

// ReadBatch reads in batches, as PlanBatch plans.
func (c *grpcClient) ReadBatch(ctx context.Context, reqs []resource.ReadRequest, parallelism int, each func(int, *resource.ReadResponse, error)) {
	if c.noBatch.Load() {
		resource.ForEach(len(reqs), parallelism, func(i int) { resp, err := c.Read(ctx, reqs[i]); each(i, resp, err) })
		return
	}
	preqs := make([]*resourcev1.ReadRequest, len(reqs))
	sizes := make([]int, len(reqs))
	var send []int
	for i, req := range reqs {
		preqs[i] = readRequestToProto(req)
		if diags := fitRequest("read", req.Type, req.Name, preqs[i], preqs[i].Prior); diags != nil {
			each(i, &resource.ReadResponse{Exists: true, Diagnostics: diags}, nil)
			continue
		}
		sizes[i] = proto.Size(preqs[i])
		send = append(send, i)
	}
	runBatches(ctx, c, send, sizes, parallelism,
		func(ctx context.Context, chunk []int, parallelism int) (func() ([]int, []*resourcev1.ReadResponse, []string, error), error) {
			batch := &resourcev1.ReadBatchRequest{Parallelism: int32(parallelism)}
			for _, i := range chunk {
				batch.Requests = append(batch.Requests, preqs[i])
			}
			stream, err := c.client.ReadBatch(ctx, batch)
			if err != nil {
				return nil, err
			}
			return func() ([]int, []*resourcev1.ReadResponse, []string, error) {
				msg, err := stream.Recv()
				if err != nil {
					return nil, nil, nil, err
				}
				idx, resps, errs := make([]int, len(msg.Results)), make([]*resourcev1.ReadResponse, len(msg.Results)), make([]string, len(msg.Results))
				for j, r := range msg.Results {
					idx[j], resps[j], errs[j] = int(r.Index), r.Response, r.Error
				}
				return idx, resps, errs, nil
			}, nil
		},
		func(i int, resp *resourcev1.ReadResponse, err error) {
			if err != nil {
				each(i, nil, err)
				return
			}
			resp = fitRead(reqs[i].Type, reqs[i].Name, preqs[i].Prior, resp)
			each(i, readResponseFromProto(resp), nil)
		},
		func(i int) { resp, err := c.Read(ctx, reqs[i]); each(i, resp, err) })
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
