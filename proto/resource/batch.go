package resource

import (
	"context"
	"sync"
)

// Batcher is a Provider that plans or reads many resources in one call,
// so that a large deployment costs no round trip per resource. The
// engine's side of a plugin always has it (falling back to one call per
// resource for a plugin without it); use PlanEach and ReadEach rather
// than calling it directly.
//
// Each answer is what Plan or Read would give for that request; each is
// passed to each (with the request's index) as soon as it is ready, in
// any order, from any goroutine, exactly once. At most parallelism
// requests are worked on at once.
type Batcher interface {
	PlanBatch(ctx context.Context, reqs []PlanRequest, parallelism int, each func(i int, resp *PlanResponse, err error))
	ReadBatch(ctx context.Context, reqs []ReadRequest, parallelism int, each func(i int, resp *ReadResponse, err error))
}

// PlanEach plans every request with p: in batches if p is a Batcher, or
// else with at most parallelism Plan calls at once.
func PlanEach(ctx context.Context, p Provider, reqs []PlanRequest, parallelism int, each func(i int, resp *PlanResponse, err error)) {
	if b, ok := p.(Batcher); ok {
		b.PlanBatch(ctx, reqs, parallelism, each)
		return
	}
	ForEach(len(reqs), parallelism, func(i int) {
		resp, err := p.Plan(ctx, reqs[i])
		each(i, resp, err)
	})
}

// ReadEach reads every request with p, as PlanEach plans.
func ReadEach(ctx context.Context, p Provider, reqs []ReadRequest, parallelism int, each func(i int, resp *ReadResponse, err error)) {
	if b, ok := p.(Batcher); ok {
		b.ReadBatch(ctx, reqs, parallelism, each)
		return
	}
	ForEach(len(reqs), parallelism, func(i int) {
		resp, err := p.Read(ctx, reqs[i])
		each(i, resp, err)
	})
}

// ForEach calls f(0) ... f(n-1) from at most parallelism goroutines at
// once (one when parallelism < 1) and returns when every call has.
func ForEach(n, parallelism int, f func(i int)) {
	workers := min(max(parallelism, 1), n)
	if workers == 0 {
		return
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
