package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrOtherState is returned by Copy when the destination holds a state of
// another lineage: copying would lose it.
var ErrOtherState = errors.New("the destination holds another state")

// Copy makes the state in to a copy of the state in from (what `state push`
// and `state pull` do). Both are locked while it runs. The destination must
// hold no state, or the same lineage at a serial no newer than the
// source's; the copy is written as the destination's next serial.
func Copy(ctx context.Context, from, to Backend, info LockInfo, lockTimeout time.Duration) (*State, error) {
	unlockFrom, err := from.Lock(ctx, info, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", from.Describe(), err)
	}
	defer unlockFrom()
	unlockTo, err := to.Lock(ctx, info, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", to.Describe(), err)
	}
	defer unlockTo()
	src, err := from.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", from.Describe(), err)
	}
	if src.Serial == 0 && len(src.Resources) == 0 {
		return nil, fmt.Errorf("%s holds no state to copy", from.Describe())
	}
	dst, err := to.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", to.Describe(), err)
	}
	stored := dst.Serial > 0
	switch {
	case stored && dst.Lineage != src.Lineage:
		return nil, fmt.Errorf("%s (lineage %s) into %s: %w (lineage %s, serial %d); refusing to replace it", from.Describe(), src.Lineage, to.Describe(), ErrOtherState, dst.Lineage, dst.Serial)
	case stored && dst.Serial > src.Serial:
		return nil, fmt.Errorf("%s is at serial %d, newer than %s at serial %d: %w", to.Describe(), dst.Serial, from.Describe(), src.Serial, ErrStale)
	}
	out := src.Clone()
	// Written as the successor of what the destination holds.
	out.Serial = dst.Serial
	if err := to.Write(ctx, out); err != nil {
		return nil, fmt.Errorf("write %s: %w", to.Describe(), err)
	}
	return out, nil
}
