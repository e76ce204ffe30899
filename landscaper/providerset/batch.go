package providerset

import (
	"context"
	"sync"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

var _ resource.Batcher = (*restarting)(nil)

// PlanBatch plans many resources through the set (see resource.Batcher).
// The call timeout bounds the wait for each answer: the batch is
// cancelled when none has come for that long, and the requests left
// unanswered fail with a TimeoutError.
func (r *restarting) PlanBatch(ctx context.Context, reqs []resource.PlanRequest, parallelism int, each func(int, *resource.PlanResponse, error)) {
	batchCall(ctx, r, "plan", len(reqs), each, func(ctx context.Context, p resource.Provider, deliver func(int, *resource.PlanResponse, error)) {
		resource.PlanEach(ctx, p, reqs, parallelism, deliver)
	})
}

// ReadBatch reads many resources through the set, as PlanBatch plans.
func (r *restarting) ReadBatch(ctx context.Context, reqs []resource.ReadRequest, parallelism int, each func(int, *resource.ReadResponse, error)) {
	batchCall(ctx, r, "read", len(reqs), each, func(ctx context.Context, p resource.Provider, deliver func(int, *resource.ReadResponse, error)) {
		resource.ReadEach(ctx, p, reqs, parallelism, deliver)
	})
}

// batchCall is call for a batch of n requests: it starts the plugin if
// needed, cancels the batch when no answer came within the call timeout,
// and explains each failed request as call explains a failed call.
func batchCall[T any](ctx context.Context, r *restarting, what string, n int, each func(int, T, error), run func(context.Context, resource.Provider, func(int, T, error))) {
	var zero T
	c, err := r.set.client(ctx, r.e)
	if err != nil {
		for i := range n {
			each(i, zero, err)
		}
		return
	}
	timeout := r.set.timeouts.Call
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	timer := time.AfterFunc(timeout, func() { cancel(errTimedOut) })
	defer timer.Stop()
	run(callCtx, c, func(i int, resp T, err error) {
		mu.Lock()
		timer.Reset(timeout)
		mu.Unlock()
		if err != nil {
			err = r.explain(ctx, callCtx, c, err, &TimeoutError{Provider: r.e.name, Call: what, After: timeout, Kind: "call"})
		}
		each(i, resp, err)
	})
}
