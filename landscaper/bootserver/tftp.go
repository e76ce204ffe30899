package bootserver

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/pin/tftp/v3"
)

// newTFTP makes the TFTP server: reads only (a nil write handler makes
// pin/tftp refuse every write request), blksize and tsize.
func (s *Server) newTFTP() *tftp.Server {
	ts := tftp.NewServer(s.tftpRead, nil)
	ts.SetHook(tftpHook{s})
	ts.SetTimeout(s.cfg.TFTPTimeout)
	ts.SetRetries(s.cfg.TFTPRetries)
	ts.SetBackoff(s.tftpBackoff)
	// pin/tftp otherwise clamps blksize to the interface MTU, forgetting
	// the 4-byte TFTP header (so 1500-byte links still fragment) and
	// slowing clients that ask for large blocks on purpose (pin/tftp#51).
	// Like tftpd-hpa, honour what the client asks for, up to an optional cap.
	ts.SetBlockSizeNegotiation(false)
	if s.cfg.TFTPMaxBlockSize > 0 {
		ts.SetBlockSize(s.cfg.TFTPMaxBlockSize)
	}
	return ts
}

// tftpBackoff is the pause before pin/tftp resends an unacknowledged
// packet: a little jitter, and none once the server is stopping, so
// transfers still running end as soon as their retries are spent.
func (s *Server) tftpBackoff(int) time.Duration {
	if s.abortCtx.Err() != nil {
		return 0
	}
	return rand.N(100 * time.Millisecond)
}

// tftpRead answers one read request. The error it returns is what pin/tftp
// sends the client in an ERROR packet when the transfer has not begun.
func (s *Server) tftpRead(filename string, rf io.ReaderFrom) error {
	out, _ := rf.(tftp.OutgoingTransfer)
	remote := ""
	if out != nil {
		addr := out.RemoteAddr()
		remote = addr.String()
	}
	rec := s.begin("tftp", remote, filename)
	defer s.finish(rec)
	c, done, err := s.start(rec, filename)
	if err != nil {
		return err
	}
	defer done()
	if out != nil {
		// tsize is answered with the size, and only if the client asked.
		out.SetSize(c.size)
	}
	ctx, cancel, _ := s.transferContext()
	defer cancel()
	// The guard is no io.Seeker: pin/tftp takes tsize from SetSize and
	// never seeks.
	n, err := rf.ReadFrom(&guardedReader{ctx: ctx, r: c.body})
	rec.bytes = n
	if err == nil {
		rec.outcome = c.outcome()
		return nil
	}
	rec.err = err
	rec.outcome = tftpOutcome(err)
	// The transfer has sent its ERROR already; pin/tftp ignores this one.
	return err
}

// probeError is how pin/tftp reports a client's ERROR code 8 ("transfer
// terminated due to option negotiation") in answer to the OACK, before any
// data: what EDK2 firmware does to learn a file's size (pin/tftp#125).
var probeError = regexp.MustCompile(`^sending block 0: code=8,`)

// tftpOutcome classifies the error that ended a transfer.
func tftpOutcome(err error) outcome {
	var ne net.Error
	switch {
	case probeError.MatchString(err.Error()):
		return outcomeSizeProbe
	case errors.Is(err, errTransferDeadline):
		return outcomeTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return outcomeTimeout
	}
	return outcomeFailed
}

// writeRefusedMessage is the error pin/tftp answers a write request with
// when there is no write handler.
const writeRefusedMessage = "server does not support write requests"

// tftpHook is the pin/tftp hook. It sees what tftpRead does not: refused
// write requests, which get their log line and count like every other
// request, and datagrams that started no transfer at all. Read requests
// are logged and counted by tftpRead, so the hook ignores them.
type tftpHook struct{ s *Server }

// OnSuccess ignores finished transfers (all reads).
func (tftpHook) OnSuccess(tftp.TransferStats) {}

// OnFailure notes a refused write request or a datagram that started
// nothing.
func (h tftpHook) OnFailure(st tftp.TransferStats, err error) {
	if err == nil {
		return
	}
	if st.RemoteAddr == nil {
		// From pin/tftp's receive loop: the datagram started no transfer.
		h.s.noTransfer(err)
		return
	}
	if err.Error() != writeRefusedMessage {
		return
	}
	rec := h.s.begin("tftp", st.RemoteAddr.String(), st.Filename)
	rec.outcome, rec.err = outcomeBadRequest, errors.New("write request refused: the boot server is read-only")
	h.s.finish(rec)
}

// noTransfer accounts for a datagram at the TFTP port that pin/tftp's
// receive loop started no transfer for. A request it could not open a
// socket for (out of file descriptors) is a failed request, logged and
// counted as one; anything else (garbage, a truncated request, an unknown
// opcode, an ACK or ERROR for no transfer) is a bad datagram, counted but
// not logged, so a flood of them cannot flood the log.
func (s *Server) noTransfer(err error) {
	if strings.HasPrefix(err.Error(), "reading UDP") {
		// The listener failed or closed: no datagram at all.
		return
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		rec := s.begin("tftp", "", "")
		rec.outcome, rec.err = outcomeFailed, fmt.Errorf("open a socket for a transfer: %w", err)
		s.finish(rec)
		return
	}
	s.metrics.badDatagrams.Add(1)
	s.log.Debug("TFTP datagram ignored", "error", err)
}
