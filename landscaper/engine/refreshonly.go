package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// PlanRefreshOnly is Terraform's -refresh-only: it asks the providers
// (Read) what exists of the recorded members (the targets only, if there
// are any), settles interrupted operations, and plans to record what they
// say and nothing else. The deployment is not evaluated; the plan has no
// changes, and its Drift lists the outputs that changed and the members
// that are gone. SaveRefresh records it.
func (e *Engine) PlanRefreshOnly(ctx context.Context) (_ *Plan, err error) {
	defer func() { err = e.redactError(err) }()
	for _, t := range e.opts.Targets {
		if _, ok := e.state.Resources[t]; !ok {
			if _, pending := e.state.Pending[t]; !pending {
				return nil, fmt.Errorf("--target %s: no such member in the state", t)
			}
		}
	}
	if err := e.recoverPending(ctx); err != nil {
		return nil, err
	}
	if err := e.ensureRecordedProviders(ctx); err != nil {
		return nil, err
	}
	reads := e.readAll(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(e.opts.Targets) > 0 {
		reads = slices.DeleteFunc(reads, func(r refreshRead) bool { return !e.targeted(r.name) })
	}
	before := maps.Clone(e.state.Resources)
	drift, err := e.applyRefresh(reads)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refreshedOnly = map[string]*state.Resource{}
	for name, r := range before {
		if now := e.state.Resources[name]; now != r {
			e.refreshedOnly[name] = now
		}
	}
	return &Plan{Drift: drift}, nil
}

// RefreshSummary is what SaveRefresh recorded.
type RefreshSummary struct {
	// Changed are the members whose outputs changed outside Landscaper;
	// Forgotten those found gone; Settled those whose interrupted
	// operation was settled.
	Changed, Forgotten, Settled []string
}

// SaveRefresh records what PlanRefreshOnly found, and nothing else: the
// outputs the providers reported, the members found gone forgotten, and
// interrupted operations settled. It creates, updates and deletes nothing.
func (e *Engine) SaveRefresh(ctx context.Context) (*RefreshSummary, error) {
	e.mu.Lock()
	refreshed := e.refreshedOnly
	sum := &RefreshSummary{Settled: e.settled}
	e.refreshedOnly, e.settled, e.upgraded = nil, nil, nil
	e.mu.Unlock()
	rec := state.NewRecorder(e.opts.Backend, e.state)
	for _, name := range sum.Settled {
		rec.ClearPending(name)
	}
	for _, name := range slices.Sorted(maps.Keys(refreshed)) {
		if r := refreshed[name]; r != nil {
			rec.SetResource(name, r)
			sum.Changed = append(sum.Changed, name)
		} else {
			rec.DeleteResource(name)
			sum.Forgotten = append(sum.Forgotten, name)
		}
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := rec.Close(closeCtx)
	e.state = rec.Snapshot()
	if err != nil {
		return sum, e.redactError(fmt.Errorf("save state: %w", err))
	}
	return sum, nil
}
