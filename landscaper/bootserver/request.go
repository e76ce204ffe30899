package bootserver

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// record is what the server notes about one request. Each request ends in
// finish, which writes its one log line and counts it once.
type record struct {
	protocol string
	remote   string
	// file is the name as the client asked for it.
	file string
	// mac and version, when known.
	mac, version string
	bytes        int64
	start        time.Time
	outcome      outcome
	// status is the HTTP status (0 for TFTP).
	status int
	err    error
	// level is the least level of the log line: raised for what the
	// fetch record says (see secret.go).
	level slog.Level
	// attrs are more attributes for the log line.
	attrs []slog.Attr
	// refusal is why an extra archive was refused (outcome refused).
	refusal string
}

// maxLoggedName bounds how much of a client's name goes into the log.
const maxLoggedName = 256

func (s *Server) begin(protocol, remote, file string) *record {
	if len(file) > maxLoggedName {
		file = file[:maxLoggedName] + "..."
	}
	return &record{protocol: protocol, remote: remote, file: file, start: time.Now(), outcome: outcomeFailed}
}

// start parses the name a client asked for, takes a transfer slot and
// finds the content. On success the caller sends the content, then calls
// done. The error is what the client may be told; the record keeps the
// details and the outcome.
func (s *Server) start(rec *record, name string) (c *content, done func(), err error) {
	req, err := parseName(name)
	if err != nil {
		rec.err = err
		if errors.Is(err, errBadName) {
			rec.outcome = outcomeBadRequest
		} else {
			rec.outcome = outcomeNotFound
		}
		return nil, nil, err
	}
	rec.mac, rec.version = req.mac, req.version
	if !s.slots.tryAcquire() {
		rec.outcome, rec.err = outcomeBusy, errBusy
		return nil, nil, errBusy
	}
	inFlight := s.metrics.inFlight[rec.protocol]
	inFlight.Add(1)
	release := func() {
		inFlight.Add(-1)
		s.slots.release()
	}
	c, err = s.resolve(req, rec)
	if err != nil {
		release()
		rec.err = err
		switch {
		case errors.Is(err, errUnknownName):
			rec.outcome = outcomeNotFound
			return nil, nil, errUnknownName
		case errors.Is(err, errRefused):
			rec.outcome = outcomeRefused
			return nil, nil, errRefused
		}
		rec.outcome = outcomeFailed
		return nil, nil, errInternal
	}
	if c.mac != "" {
		rec.mac, rec.version = c.mac, c.version
	}
	return c, func() { c.Close(); release() }, nil
}

// finish writes the request's log line and counts it (in that order, so
// a request that is counted is logged).
func (s *Server) finish(rec *record) {
	defer s.metrics.count(rec.protocol, rec.outcome, rec.bytes, rec.refusal)
	attrs := []slog.Attr{
		slog.String("protocol", rec.protocol),
		slog.String("remote", rec.remote),
		slog.String("file", rec.file),
	}
	if rec.mac != "" {
		attrs = append(attrs, slog.String("mac", rec.mac))
	}
	if rec.version != "" {
		attrs = append(attrs, slog.String("version", rec.version))
	}
	attrs = append(attrs,
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(rec.start)),
		slog.String("outcome", string(rec.outcome)),
	)
	if rec.status != 0 {
		attrs = append(attrs, slog.Int("status", rec.status))
	}
	attrs = append(attrs, rec.attrs...)
	level := slog.LevelInfo
	switch rec.outcome {
	case outcomeOK, outcomeSizeProbe:
	case outcomeLocalBoot:
		attrs = append(attrs, slog.String("reason", "installed on its disks; the machine was sent on to its next boot device"))
	case outcomeNoEntry:
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("reason", "no boot entry for this MAC in landscaper; the machine was sent on to its next boot device"))
	default:
		level = slog.LevelWarn
		if rec.err != nil {
			attrs = append(attrs, slog.String("error", rec.err.Error()))
		}
	}
	if rec.refusal != "" {
		attrs = append(attrs, slog.String("refused", rec.refusal))
	}
	s.log.LogAttrs(context.Background(), max(level, rec.level), "boot request", attrs...)
}
