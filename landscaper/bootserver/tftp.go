package bootserver

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"time"

	"github.com/pin/tftp/v3"
)

// newTFTP makes the TFTP server: reads only (a nil write handler makes
// pin/tftp refuse every write request), blksize and tsize.
func (s *Server) newTFTP() *tftp.Server {
	ts := tftp.NewServer(s.tftpRead, nil)
	ts.SetHook(writeRefusals{s})
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

// writeRefusals is a pin/tftp hook that gives each refused write request
// its log line and count, like every other request. Read requests are
// logged and counted by tftpRead, so the hook ignores them.
type writeRefusals struct{ s *Server }

// OnSuccess ignores finished transfers (all reads).
func (writeRefusals) OnSuccess(tftp.TransferStats) {}

// OnFailure notes a refused write request.
func (h writeRefusals) OnFailure(st tftp.TransferStats, err error) {
	if err == nil || err.Error() != writeRefusedMessage {
		return
	}
	rec := h.s.begin("tftp", st.RemoteAddr.String(), st.Filename)
	rec.outcome, rec.err = outcomeBadRequest, errors.New("write request refused: the boot server is read-only")
	h.s.finish(rec)
}
