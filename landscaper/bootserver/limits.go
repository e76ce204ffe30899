package bootserver

import (
	"context"
	"errors"
	"io"
	"time"
)

var (
	// errBusy refuses a transfer while the maximum number are running.
	errBusy = errors.New("server busy, try again later")
	// errTransferDeadline ends a transfer that outlived its deadline.
	errTransferDeadline = errors.New("transfer deadline exceeded")
	// errShuttingDown ends the transfers still running when the server
	// stops and its grace period is over.
	errShuttingDown = errors.New("server shutting down")
)

// slots caps the transfers running at once, over both protocols: a boot
// storm or a stuck client may not take every socket and file descriptor.
type slots chan struct{}

// tryAcquire takes a slot if one is free; it never waits, so a client
// beyond the cap gets an error at once and retries later.
func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// transferContext returns the context of one transfer: done at the
// transfer's deadline (cause errTransferDeadline) or when the server
// aborts what is still running (cause errShuttingDown).
func (s *Server) transferContext() (context.Context, context.CancelFunc, time.Time) {
	deadline := time.Now().Add(s.cfg.TransferTimeout)
	ctx, cancel := context.WithDeadlineCause(s.abortCtx, deadline, errTransferDeadline)
	return ctx, cancel, deadline
}

// guardedReader is a file or script as a transfer reads it: its reads fail
// once the transfer's context is done. pin/tftp has no context of its own,
// and it reads the next block only after the previous one was
// acknowledged, so a client that keeps a transfer alive with slow
// acknowledgements is cut off at the deadline.
type guardedReader struct {
	ctx context.Context
	r   io.Reader
}

// Read reads from the content unless the transfer is over.
func (g *guardedReader) Read(p []byte) (int, error) {
	if g.ctx.Err() != nil {
		return 0, context.Cause(g.ctx)
	}
	return g.r.Read(p)
}

// guardedReadSeeker is a guardedReader that can seek, for
// http.ServeContent, which finds sizes and ranges so.
type guardedReadSeeker struct {
	guardedReader
	s io.Seeker
}

// Seek seeks in the content.
func (g *guardedReadSeeker) Seek(offset int64, whence int) (int64, error) {
	return g.s.Seek(offset, whence)
}
