package bootserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pin/tftp/v3/netascii"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// tftpServer is the TFTP server: read requests only, with the blksize and
// tsize options, each transfer from a socket of its own (RFC 1350's
// transfer IDs), lock-step, one block per acknowledgement.
//
// It is the boot server's own. pin/tftp, which served TFTP before (the
// tests still use its client), waits for a transfer's first
// acknowledgement as long as for any other (TFTPRetries sends, TFTPTimeout
// apart) and gives no way to end that wait early, so a few dozen requests
// from sockets that never answer held every transfer slot for half a
// minute (issue 17). Here a transfer holds no slot until its client has
// acknowledged the first packet; until then it waits among a bounded
// number of such transfers for at most TFTPFirstACKRetries sends,
// TFTPFirstACKTimeout apart, and may be dropped for a newer request (see
// tftpGate); and one client address may have only MaxTransfersPerAddress
// transfers.
type tftpServer struct {
	s    *Server
	conn net.PacketConn
	// p4 or p6 reads requests with the local address they were sent to
	// (IP_PKTINFO), so that each transfer answers from that address; nil
	// when the socket cannot tell it, and conn is read instead.
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
	gate *tftpGate
	// maxBlock caps the block size (TFTPMaxBlockSize).
	maxBlock int

	mu      sync.Mutex
	closing bool
	// requests counts the requests being handled; Shutdown waits for them.
	requests sync.WaitGroup
}

// newTFTP makes the TFTP server for the listening socket conn.
func (s *Server) newTFTP(conn net.PacketConn) *tftpServer {
	t := &tftpServer{
		s:        s,
		conn:     conn,
		gate:     newTFTPGate(s.cfg.MaxTransfersPerAddress, s.cfg.TFTPMaxUnacknowledged, &s.metrics.tftpGate),
		maxBlock: tftpMaxBlockSize,
	}
	// Like tftpd-hpa, honour the block size the client asks for, up to an
	// optional cap. (pin/tftp clamped it to the interface MTU, forgetting
	// the 4-byte TFTP header, pin/tftp#51.)
	if m := s.cfg.TFTPMaxBlockSize; m >= tftpMinBlockSize && m < tftpMaxBlockSize {
		t.maxBlock = m
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		if ip := uc.LocalAddr().(*net.UDPAddr).IP; ip.To4() != nil {
			p := ipv4.NewPacketConn(uc)
			if p.SetControlMessage(ipv4.FlagDst, true) == nil {
				t.p4 = p
			}
		} else {
			p := ipv6.NewPacketConn(uc)
			if p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true) == nil {
				t.p6 = p
			}
		}
	}
	return t
}

// tftpSource is where a request came from and was sent to.
type tftpSource struct {
	remote *net.UDPAddr
	// local is the address the request was sent to, nil if unknown;
	// ifIndex its interface, 0 if unknown.
	local   net.IP
	ifIndex int
}

// read reads one datagram at the TFTP port into b.
func (t *tftpServer) read(b []byte) (int, tftpSource, error) {
	var (
		n    int
		from net.Addr
		src  tftpSource
		err  error
	)
	switch {
	case t.p4 != nil:
		var cm *ipv4.ControlMessage
		n, cm, from, err = t.p4.ReadFrom(b)
		if cm != nil {
			src.local, src.ifIndex = cm.Dst, cm.IfIndex
		}
	case t.p6 != nil:
		var cm *ipv6.ControlMessage
		n, cm, from, err = t.p6.ReadFrom(b)
		if cm != nil {
			src.local, src.ifIndex = cm.Dst, cm.IfIndex
		}
	default:
		n, from, err = t.conn.ReadFrom(b)
	}
	if err != nil {
		return 0, tftpSource{}, err
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return 0, tftpSource{}, fmt.Errorf("a datagram from %v, which is no UDP address", from)
	}
	src.remote = ua
	return n, src, nil
}

// Serve reads requests until Shutdown, and handles each in a goroutine of
// its own. It returns nil after Shutdown, an error if the socket fails.
func (t *tftpServer) Serve() error {
	buf := make([]byte, tftpRequestSize)
	for {
		n, src, err := t.read(buf)
		if err != nil {
			if t.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("read TFTP requests: %w", err)
			}
			// About one datagram (or a passing shortage of memory): the
			// socket goes on.
			t.s.log.Warn("TFTP: reading a datagram failed", "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.dispatch(buf[:n], src)
	}
}

// Shutdown stops reading requests and waits until every request has been
// handled. The transfers still running end at the latest when the
// server's abort context is cancelled.
func (t *tftpServer) Shutdown() {
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	t.conn.Close()
	t.requests.Wait()
}

func (t *tftpServer) isClosing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closing
}

// dispatch handles one datagram at the TFTP port. A datagram that is no
// request (garbage, a truncated request, an unknown opcode, an ACK or
// ERROR for no transfer) is counted as a bad datagram but not logged, so
// a flood of them cannot flood the log. A request is handled in a
// goroutine of its own.
func (t *tftpServer) dispatch(p []byte, src tftpSource) {
	rq, err := parseTFTPRequest(p)
	if err != nil {
		t.s.metrics.badDatagrams.Add(1)
		t.s.log.Debug("TFTP datagram ignored", "remote", src.remote.String(), "error", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return
	}
	t.requests.Add(1)
	go func() {
		defer t.requests.Done()
		t.handle(rq, src)
	}()
}

// dial opens the socket of one transfer: from the address the request was
// sent to (any, if that is unknown or a broadcast or multicast address)
// and a new port, connected to the client, so the kernel passes on only
// the client's datagrams and reports an unreachable client.
func dialTFTPClient(src tftpSource) (*net.UDPConn, error) {
	var laddr *net.UDPAddr
	if ip := src.local; ip != nil && !ip.IsUnspecified() && !ip.IsMulticast() && !ip.Equal(net.IPv4bcast) {
		laddr = &net.UDPAddr{IP: ip}
		if ip.To4() == nil && ip.IsLinkLocalUnicast() && src.ifIndex > 0 {
			laddr.Zone = strconv.Itoa(src.ifIndex)
		}
	}
	return net.DialUDP("udp", laddr, src.remote)
}

// handle answers one request: it logs and counts it once, whatever
// happens.
func (t *tftpServer) handle(rq tftpRequest, src tftpSource) {
	s := t.s
	rec := s.begin("tftp", src.remote.String(), rq.filename)
	defer s.finish(rec)
	conn, err := dialTFTPClient(src)
	if err != nil {
		rec.outcome, rec.err = outcomeFailed, fmt.Errorf("open a socket for the transfer: %w", err)
		return
	}
	defer conn.Close()
	x := &tftpTransfer{conn: conn, rec: rec}
	if rq.write {
		rec.outcome, rec.err = outcomeBadRequest, errors.New("write request refused: the boot server is read-only")
		x.sendError(tftpErrAccess, "the boot server is read-only")
		return
	}

	req, err := parseName(rq.filename)
	if err != nil {
		rec.err = err
		if errors.Is(err, errBadName) {
			rec.outcome = outcomeBadRequest
			x.sendError(tftpErrAccess, errBadName.Error())
		} else {
			rec.outcome = outcomeNotFound
			x.sendError(tftpErrNotFound, errUnknownName.Error())
		}
		return
	}
	rec.mac, rec.version = req.mac, req.version

	ctx, cancel, _ := s.transferContext()
	defer cancel()
	ctx, drop := context.WithCancelCause(ctx)
	defer drop(nil)
	// Refused at once when every slot is taken: the transfer could not
	// take one after its first acknowledgement either.
	if s.slots.full() {
		x.fail(errBusy)
		return
	}
	ticket, err := t.gate.admit(src.remote.AddrPort().Addr().Unmap().WithZone(""), drop)
	if err != nil {
		x.fail(err)
		return
	}
	defer t.gate.release(ticket)

	c, err := s.resolve(req, rec)
	if err != nil {
		rec.err = err
		switch {
		case errors.Is(err, errUnknownName):
			rec.outcome = outcomeNotFound
			x.sendError(tftpErrNotFound, errUnknownName.Error())
		case errors.Is(err, errRefused):
			rec.outcome = outcomeRefused
			x.sendError(tftpErrAccess, errRefused.Error())
		default:
			rec.outcome = outcomeFailed
			x.sendError(tftpErrUndefined, errInternal.Error())
		}
		return
	}
	defer c.Close()
	if c.mac != "" {
		rec.mac, rec.version = c.mac, c.version
	}
	if err := t.send(ctx, x, c, rq, ticket); err != nil {
		x.fail(err)
		return
	}
	rec.outcome = c.outcome()
}

// send sends the content: first the OACK, or DATA block 1 if no option
// was accepted, with the short wait for the first acknowledgement; then,
// holding a transfer slot, the blocks that are left.
func (t *tftpServer) send(ctx context.Context, x *tftpTransfer, c *content, rq tftpRequest, ticket *tftpTicket) error {
	s := t.s
	// Waits end when ctx does: at the deadline, when the server aborts,
	// or when the gate drops the transfer.
	stop := context.AfterFunc(ctx, x.interrupt)
	defer stop()

	body := io.Reader(c.body)
	if rq.netascii() {
		body = netascii.ToReader(body)
	}
	blockSize, oack := rq.negotiate(c.size, t.maxBlock)
	x.data = make([]byte, 4+blockSize)
	binary.BigEndian.PutUint16(x.data, tftpOpDATA)

	var (
		first []byte
		block uint16
		last  bool
		err   error
	)
	if len(oack) > 0 {
		first = appendTFTPOACK(nil, oack)
	} else {
		block = 1
		if first, last, err = x.readBlock(ctx, body, block); err != nil {
			return err
		}
	}
	if err := x.exchange(ctx, first, block, s.cfg.TFTPFirstACKTimeout, s.cfg.TFTPFirstACKRetries); err != nil {
		return err
	}
	if !t.gate.acknowledged(ticket) {
		return errDropped // its ACK came late: the transfer is gone
	}
	if last {
		return nil
	}
	if !s.slots.tryAcquire() {
		return errBusy
	}
	inFlight := s.metrics.inFlight["tftp"]
	inFlight.Add(1)
	defer func() {
		inFlight.Add(-1)
		s.slots.release()
	}()
	for !last {
		block++ // wraps from 65535 to 0, as tftpd-hpa and most clients do
		var p []byte
		if p, last, err = x.readBlock(ctx, body, block); err != nil {
			return err
		}
		if err := x.exchange(ctx, p, block, s.cfg.TFTPTimeout, s.cfg.TFTPRetries); err != nil {
			return err
		}
	}
	return nil
}

var (
	// errNoAnswer: the client acknowledged none of the sends of a packet.
	errNoAnswer = errors.New("no acknowledgement")
	// errClientGone: the client's port is closed (ICMP port unreachable).
	errClientGone = errors.New("the client's port is unreachable")
)

// tftpClientError is an ERROR packet from the client, which ends the
// transfer.
type tftpClientError struct {
	// block is the block the server had sent, 0 for the OACK.
	block   uint16
	code    uint16
	message string
}

func (e *tftpClientError) Error() string {
	return fmt.Sprintf("the client sent ERROR code %d (%q) after block %d", e.code, e.message, e.block)
}

// tftpOutcome classifies the error that ended a transfer.
func tftpOutcome(err error) outcome {
	var ce *tftpClientError
	switch {
	case errors.Is(err, errBusy):
		return outcomeBusy
	case errors.As(err, &ce) && ce.code == tftpErrOptions && ce.block == 0:
		// Code 8 in answer to the OACK, before any data: what EDK2
		// firmware does to learn a file's size.
		return outcomeSizeProbe
	case errors.Is(err, errTransferDeadline), errors.Is(err, errNoAnswer), errors.Is(err, errClientGone):
		return outcomeTimeout
	}
	return outcomeFailed
}

// tftpTransfer is the sending end of one transfer.
type tftpTransfer struct {
	conn *net.UDPConn
	rec  *record
	// data holds a DATA packet: header and one block.
	data []byte
	// recv holds a datagram from the client.
	recv [tftpRequestSize]byte
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// interrupt ends a wait for the client.
func (x *tftpTransfer) interrupt() { _ = x.conn.SetReadDeadline(aLongTimeAgo) }

// readBlock reads block number block into x.data and returns the DATA
// packet; last is true for the last block, shorter than the block size
// (possibly empty).
func (x *tftpTransfer) readBlock(ctx context.Context, body io.Reader, block uint16) (p []byte, last bool, err error) {
	if ctx.Err() != nil {
		return nil, false, context.Cause(ctx)
	}
	binary.BigEndian.PutUint16(x.data[2:], block)
	n, err := io.ReadFull(body, x.data[4:])
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case err != nil:
		return nil, false, fmt.Errorf("%w: read block %d: %w", errInternal, block, err)
	}
	x.rec.bytes += int64(n)
	return x.data[:4+n], last, nil
}

// exchange sends p, the packet of block (0 for the OACK), and waits for
// its acknowledgement, sending it sends times in all, timeout apart, with
// a little jitter before each resend.
func (x *tftpTransfer) exchange(ctx context.Context, p []byte, block uint16, timeout time.Duration, sends int) error {
	for i := 1; ; i++ {
		if _, err := x.conn.Write(p); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("send block %d: %w", block, errClientGone)
			}
			return fmt.Errorf("send block %d: %w", block, err)
		}
		err := x.awaitACK(ctx, block, timeout)
		if !errors.Is(err, errNoAnswer) || i >= sends {
			return err
		}
		if err := sleep(ctx, rand.N(100*time.Millisecond)); err != nil {
			return err
		}
	}
}

// awaitACK waits up to timeout for the acknowledgement of block. Other
// acknowledgements (a late duplicate of the one before) are ignored, and
// do not extend the wait.
func (x *tftpTransfer) awaitACK(ctx context.Context, block uint16, timeout time.Duration) error {
	if err := x.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("wait for the acknowledgement of block %d: %w", block, err)
	}
	// After setting the deadline: interrupt, which runs once ctx is done,
	// then comes after it.
	for ctx.Err() == nil {
		n, err := x.conn.Read(x.recv[:])
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("block %d: %w within %s", block, errNoAnswer, timeout)
		case errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("block %d: %w", block, errClientGone)
		case err != nil:
			return fmt.Errorf("wait for the acknowledgement of block %d: %w", block, err)
		default:
			r, ok := parseTFTPReply(x.recv[:n])
			switch {
			case !ok:
			case r.op == tftpOpACK && r.block == block:
				return nil
			case r.op == tftpOpERROR:
				return &tftpClientError{block: block, code: r.block, message: r.message}
			}
		}
	}
	return context.Cause(ctx)
}

// fail records the error that ended the transfer, and tells the client
// why unless the client ended it or is gone.
func (x *tftpTransfer) fail(err error) {
	x.rec.err = err
	x.rec.outcome = tftpOutcome(err)
	var ce *tftpClientError
	switch {
	case errors.As(err, &ce), errors.Is(err, errClientGone):
	case errors.Is(err, errBusy):
		x.sendError(tftpErrUndefined, errBusy.Error())
	case errors.Is(err, errTransferDeadline):
		x.sendError(tftpErrUndefined, errTransferDeadline.Error())
	case errors.Is(err, errShuttingDown):
		x.sendError(tftpErrUndefined, errShuttingDown.Error())
	case errors.Is(err, errNoAnswer):
		x.sendError(tftpErrUndefined, "timed out waiting for an acknowledgement")
	default:
		x.sendError(tftpErrUndefined, errInternal.Error())
	}
}

// sendError sends an ERROR packet, best effort: the transfer is over.
func (x *tftpTransfer) sendError(code uint16, msg string) {
	_, _ = x.conn.Write(appendTFTPError(nil, code, msg))
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-tm.C:
		return nil
	}
}
