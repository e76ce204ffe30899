package bootserver

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
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
	// errDropped ends a TFTP transfer that was still waiting for its
	// client's first acknowledgement when a newer request needed its place
	// among the waiting (see tftpGate). The client is told the server is
	// busy.
	errDropped = fmt.Errorf("%w (dropped while waiting for the first acknowledgement, to make room for a newer request)", errBusy)
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

// full reports whether every slot is taken. It only advises: a slot may
// be taken or given back right after.
func (s slots) full() bool { return len(s) == cap(s) }

// tftpGate admits TFTP transfers. A TFTP transfer begins with one datagram
// from a client the server knows nothing about, and the server must
// answer it (with an OACK or the first DATA block) and wait: the sender
// may be a booting machine, or a socket that never answers, or a forged
// source address. So a transfer takes no transfer slot until its client
// has acknowledged that first packet. Until then it waits in a pool of its
// own, of bounded size, and when the pool is full the newest request
// drops the oldest waiting transfer. A flood of requests that are never
// acknowledged thus churns this pool and nothing else: the transfer slots
// stay with transfers whose clients answer, and a real client, whose
// acknowledgement comes within a round trip, loses its place only if the
// pool is refilled faster than that.
//
// The gate also caps the TFTP transfers of one client address, waiting or
// not, so that one address cannot take most of the slots or of the pool.
type tftpGate struct {
	maxPerAddress int
	maxWaiting    int
	metrics       *tftpGateMetrics

	mu         sync.Mutex
	perAddress map[netip.Addr]int
	// waiting holds the *tftpTicket of each transfer waiting for its
	// first acknowledgement, oldest first.
	waiting list.List
}

func newTFTPGate(maxPerAddress, maxWaiting int, m *tftpGateMetrics) *tftpGate {
	m.maxWaiting = maxWaiting
	return &tftpGate{maxPerAddress: maxPerAddress, maxWaiting: maxWaiting, metrics: m, perAddress: map[netip.Addr]int{}}
}

// tftpTicket is one admitted transfer.
type tftpTicket struct {
	addr netip.Addr
	// drop ends the transfer; called with errDropped.
	drop context.CancelCauseFunc
	// elem is the ticket's place in waiting, nil once the transfer was
	// acknowledged or dropped.
	elem *list.Element
}

// admit admits a transfer for a client at addr, as waiting for its first
// acknowledgement; drop ends the transfer if it has to make room. It
// fails (with an error wrapping errBusy) if addr has the most transfers
// one address may have. Every ticket is given back with release.
func (g *tftpGate) admit(addr netip.Addr, drop context.CancelCauseFunc) (*tftpTicket, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.perAddress[addr]; n >= g.maxPerAddress {
		g.metrics.refusedPerAddress.Add(1)
		return nil, fmt.Errorf("%w: %s has %d TFTP transfers, the most one address may have", errBusy, addr, n)
	}
	if g.waiting.Len() >= g.maxWaiting {
		oldest := g.waiting.Remove(g.waiting.Front()).(*tftpTicket)
		oldest.elem = nil
		oldest.drop(errDropped)
		g.metrics.waiting.Add(-1)
		g.metrics.dropped.Add(1)
	}
	t := &tftpTicket{addr: addr, drop: drop}
	t.elem = g.waiting.PushBack(t)
	g.perAddress[addr]++
	g.metrics.waiting.Add(1)
	return t, nil
}

// acknowledged takes t out of the waiting transfers: its client answered.
// It reports false if t was dropped before.
func (g *tftpGate) acknowledged(t *tftpTicket) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.elem == nil {
		return false
	}
	g.waiting.Remove(t.elem)
	t.elem = nil
	g.metrics.waiting.Add(-1)
	return true
}

// release gives back the ticket of a transfer that ended.
func (g *tftpGate) release(t *tftpTicket) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.elem != nil {
		g.waiting.Remove(t.elem)
		t.elem = nil
		g.metrics.waiting.Add(-1)
	}
	if g.perAddress[t.addr]--; g.perAddress[t.addr] <= 0 {
		delete(g.perAddress, t.addr)
	}
}

// transfers returns how many transfers addr has, waiting or not.
func (g *tftpGate) transfers(addr netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.perAddress[addr]
}

// tftpGateMetrics are the gate's gauges and counters, written with the
// server's other metrics.
type tftpGateMetrics struct {
	waiting           atomic.Int64
	maxWaiting        int
	dropped           atomic.Int64
	refusedPerAddress atomic.Int64
}

// write writes them in the Prometheus text exposition format.
func (m *tftpGateMetrics) write(w io.Writer) {
	fmt.Fprintln(w, "# HELP landscaper_boot_tftp_unacknowledged TFTP transfers waiting for their client's first acknowledgement; they hold no transfer slot and are not in transfers_in_flight.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_tftp_unacknowledged gauge")
	fmt.Fprintf(w, "landscaper_boot_tftp_unacknowledged %d\n", m.waiting.Load())
	fmt.Fprintln(w, "# HELP landscaper_boot_tftp_unacknowledged_max The most TFTP transfers that may wait for their first acknowledgement at once; a request beyond it drops the oldest.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_tftp_unacknowledged_max gauge")
	fmt.Fprintf(w, "landscaper_boot_tftp_unacknowledged_max %d\n", m.maxWaiting)
	fmt.Fprintln(w, "# HELP landscaper_boot_tftp_unacknowledged_dropped_total TFTP transfers dropped while waiting for their first acknowledgement, to make room for newer requests (a flood of requests nobody acknowledges); also in requests_total as outcome busy.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_tftp_unacknowledged_dropped_total counter")
	fmt.Fprintf(w, "landscaper_boot_tftp_unacknowledged_dropped_total %d\n", m.dropped.Load())
	fmt.Fprintln(w, "# HELP landscaper_boot_tftp_refused_per_address_total TFTP requests refused because their client address had the most transfers one address may have; also in requests_total as outcome busy.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_tftp_refused_per_address_total counter")
	fmt.Fprintf(w, "landscaper_boot_tftp_refused_per_address_total %d\n", m.refusedPerAddress.Load())
}

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
