package bootserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// newHTTP makes the HTTP server. It has no overall write timeout: a large
// initrd takes what it takes. Each transfer gets its own write deadline
// instead (see serveFile).
func (s *Server) newHTTP() *http.Server {
	return &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
}

// httpHandler serves /metrics and the boot files. It uses no ServeMux: a
// mux cleans paths and redirects, and names the server does not serve
// should get an error, not a redirect.
func (s *Server) httpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			s.metrics.serveMetrics(w, r, s.cfg.ExtraMetrics)
			return
		}
		for prefix, h := range s.cfg.Mounts {
			if strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
		}
		s.serveFile(w, r)
	})
}

// serveFile answers a request for a boot file: with Content-Length, range
// requests and conditional requests (http.ServeContent).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rec := s.begin("http", r.RemoteAddr, r.URL.Path)
	defer s.finish(rec)
	cw := &countingWriter{ResponseWriter: w}
	defer func() { rec.status = cw.status }()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rec.outcome, rec.err = outcomeBadRequest, errors.New("method "+r.Method+" not allowed")
		cw.Header().Set("Allow", "GET, HEAD")
		http.Error(cw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// No name the server serves needs percent-encoding; an encoded dot,
	// slash or NUL is someone probing.
	if strings.Contains(r.URL.EscapedPath(), "%") {
		rec.outcome, rec.err = outcomeBadRequest, errBadName
		http.Error(cw, "bad request", http.StatusBadRequest)
		return
	}
	c, done, err := s.start(rec, r.URL.Path)
	if err != nil {
		httpError(cw, err)
		return
	}
	defer done()

	ctx, cancel, deadline := s.transferContext()
	defer cancel()
	// A client that stops reading cannot hold its slot past the deadline.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(deadline)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()

	cw.Header().Set("Content-Type", c.contentType)
	http.ServeContent(cw, r, "", c.modTime, &guardedReadSeeker{guardedReader{ctx: ctx, r: c.body}, c.body})
	rec.bytes = cw.n

	switch {
	case cw.status >= 400:
		// A range that cannot be satisfied.
		rec.outcome, rec.err, rec.bytes = outcomeBadRequest, errors.New(http.StatusText(cw.status)), 0
	case r.Method == http.MethodHead || cw.status == http.StatusNotModified:
		rec.outcome = c.outcome()
	default:
		want, _ := strconv.ParseInt(cw.Header().Get("Content-Length"), 10, 64)
		if cw.n >= want {
			rec.outcome = c.outcome()
			break
		}
		cause := context.Cause(ctx)
		if cause == nil && errors.Is(cw.err, os.ErrDeadlineExceeded) {
			// The write deadline is the transfer's deadline, and it may
			// fire before the context's own timer does.
			cause = errTransferDeadline
		}
		if cause == nil {
			cause = errors.New("client went away")
			if cw.err != nil {
				cause = fmt.Errorf("client went away: %w", cw.err)
			}
		}
		rec.outcome = outcomeFailed
		if errors.Is(cause, errTransferDeadline) {
			rec.outcome = outcomeTimeout
		}
		rec.err = fmt.Errorf("%w after %d of %d bytes", cause, cw.n, want)
	}
}

// httpError answers a request that start refused.
func httpError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errBadName):
		http.Error(w, "bad request", http.StatusBadRequest)
	case errors.Is(err, errUnknownName):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, errRefused):
		http.Error(w, errRefused.Error(), http.StatusForbidden)
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "server busy, try again later", http.StatusServiceUnavailable)
	default:
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// countingWriter notes the status, counts the body bytes written and
// keeps the first write error.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	err    error
}

// WriteHeader notes the status.
func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes written.
func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
