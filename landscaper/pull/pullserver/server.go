// Package pullserver is the pull API of `landscaper serve --pull-dir`:
// hosts fetch their desired generation (long-polling for the next one),
// fetch their system's closure from a binary cache scoped to it, and
// report back. Every request is signed with the host's SSH host key
// (package pullauth); a host reaches only paths under its own ID, and
// only if the pull directory knows it. Answers that tell a host what to
// run are signed with the server's key. All state is in the pull
// directory (package pulldir); the server keeps only caches, so several
// servers can serve one directory.
//
// Paths, under /pull/v1/:
//
//	hosts/<id>/desired[?wait=S&known=G]   GET: the desired generation, signed
//	hosts/<id>/report                     POST: a report (pulldir.Report)
//	hosts/<id>/cache/nix-cache-info       GET: the binary cache's info
//	hosts/<id>/cache/<hash>.narinfo       GET: a path of the host's closure
//	hosts/<id>/cache/nar/<hash>.nar       GET: its NAR, uncompressed
//	roles/<role>/enroll                   POST: a machine enrolls in a role
package pullserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/nixcache"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

// Prefix is where the API is mounted.
const Prefix = pullapi.Prefix

// Defaults of Config's zero values.
const (
	DefaultMaxWait   = 5 * time.Minute
	DefaultPollEvery = 200 * time.Millisecond
	maxBody          = 1 << 20
)

// Config says what a Server serves.
type Config struct {
	Dir pulldir.Dir
	// MaxSkew bounds the clock difference of signed requests
	// (pullauth.DefaultMaxSkew when zero).
	MaxSkew time.Duration
	// MaxWait caps a long-poll's ?wait= (DefaultMaxWait when zero).
	MaxWait time.Duration
	// PollEvery is how often the server looks at the desired generation
	// of the hosts whose long-polls wait (DefaultPollEvery when zero): a
	// new one is seen within it.
	PollEvery time.Duration
	Logger    *slog.Logger
}

// Server answers the pull API. Make it with New.
type Server struct {
	cfg      Config
	signer   ssh.Signer
	cacheKey nixcache.SecretKey
	verifier pullauth.Verifier
	log      *slog.Logger
	metrics  *metrics
	closures closureCache
	watch    *watcher
	// done is closed by Close: long-polls answer at once.
	done      chan struct{}
	closeOnce sync.Once
}

// New loads the pull directory's keys, making them on first start.
func New(cfg Config) (*Server, error) {
	if cfg.Dir.Path == "" {
		return nil, errors.New("pull server: no pull directory")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = DefaultPollEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	signer, err := cfg.Dir.ServerKey()
	if err != nil {
		return nil, err
	}
	cacheKey, err := cfg.Dir.CacheKey()
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:      cfg,
		signer:   signer,
		cacheKey: cacheKey,
		verifier: pullauth.Verifier{MaxSkew: cfg.MaxSkew, Claim: cfg.Dir.ClaimNonce},
		log:      cfg.Logger,
		metrics:  newMetrics(),
		watch:    newWatcher(cfg.Dir, cfg.PollEvery),
		done:     make(chan struct{}),
	}, nil
}

// PublicKey is the server's signing key, which agents pin.
func (s *Server) PublicKey() ssh.PublicKey { return s.signer.PublicKey() }

// CachePublicKey is the binary cache's key in Nix's form.
func (s *Server) CachePublicKey() string { return s.cacheKey.Public() }

// Close ends the long-polls in progress (they answer at once) and makes
// new ones answer without waiting.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// request is one API request being answered.
type request struct {
	endpoint string
	host     string
	outcome  string
}

// ServeHTTP answers a request under Prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req := &request{endpoint: "unknown", outcome: "ok"}
	defer func() {
		s.metrics.count(req.endpoint, req.outcome)
		level := slog.LevelInfo
		if req.outcome != "ok" {
			level = slog.LevelWarn
		}
		if req.outcome == refusedOtherHost || req.outcome == string(refusedReplay) {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "pull request", "remote", r.RemoteAddr, "host", req.host, "endpoint", req.endpoint, "path", r.URL.Path, "outcome", req.outcome, "duration", time.Since(start).Round(time.Millisecond))
	}()
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if role, isEnroll := enrollRole(rest); ok && isEnroll && !strings.Contains(r.URL.EscapedPath(), "%") {
		s.serveEnroll(w, r, req, role)
		return
	}
	id, sub, ok2 := strings.Cut(strings.TrimPrefix(rest, "hosts/"), "/")
	if !ok || !strings.HasPrefix(rest, "hosts/") || !ok2 || !pulldir.ValidID(id) || strings.Contains(r.URL.EscapedPath(), "%") {
		req.outcome = refusedBadRequest
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	req.endpoint = endpointOf(sub)
	body, caller, ok := s.readSigned(w, r, req, maxBody)
	if !ok {
		return
	}
	if caller.ID != id {
		// A host asking for another host's things: refused, counted and
		// logged as an alarm.
		req.outcome = refusedOtherHost
		http.Error(w, "refused: not your host ID", http.StatusForbidden)
		return
	}
	if !s.cfg.Dir.Known(id) {
		req.outcome = refusedUnknownHost
		http.Error(w, "refused: unknown host", http.StatusForbidden)
		return
	}
	switch {
	case sub == "desired" && r.Method == http.MethodGet:
		s.cfg.Dir.MarkSeen(caller.ID, time.Now())
		s.serveDesired(w, r, req, caller)
	case sub == "report" && r.Method == http.MethodPost:
		s.serveReport(w, req, caller, body)
	case strings.HasPrefix(sub, "cache/") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.serveCache(w, r, req, caller, strings.TrimPrefix(sub, "cache/"))
	default:
		req.outcome = refusedBadRequest
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// readSigned reads the request's body (at most limit bytes) and checks
// its signature; when either fails it answers and returns false.
func (s *Server) readSigned(w http.ResponseWriter, r *http.Request, req *request, limit int) ([]byte, pullauth.Caller, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil || len(body) > limit {
		req.outcome = refusedBadRequest
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return nil, pullauth.Caller{}, false
	}
	caller, err := s.verifier.Verify(r, body, time.Now())
	if err != nil {
		req.outcome = refusalOf(err)
		if req.outcome == "error" {
			s.log.Error("pull request: cannot check the signature", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return nil, pullauth.Caller{}, false
		}
		http.Error(w, "refused: "+req.outcome, http.StatusUnauthorized)
		return nil, pullauth.Caller{}, false
	}
	req.host = caller.ID
	return body, caller, true
}

func endpointOf(sub string) string {
	switch {
	case sub == "desired", sub == "report":
		return sub
	case sub == "cache/nix-cache-info":
		return "nix-cache-info"
	case strings.HasSuffix(sub, ".narinfo"):
		return "narinfo"
	case strings.HasPrefix(sub, "cache/nar/"):
		return "nar"
	}
	return "unknown"
}

// serveDesired answers with the host's desired generation, after
// waiting up to ?wait= seconds for one other than ?known=.
func (s *Server) serveDesired(w http.ResponseWriter, r *http.Request, req *request, caller pullauth.Caller) {
	q := r.URL.Query()
	wait, known := time.Duration(0), int64(-1)
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			req.outcome = refusedBadRequest
			http.Error(w, "wait: want whole seconds", http.StatusBadRequest)
			return
		}
		wait = min(time.Duration(n)*time.Second, s.cfg.MaxWait)
	}
	if v := q.Get("known"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			req.outcome = refusedBadRequest
			http.Error(w, "known: want a generation number", http.StatusBadRequest)
			return
		}
		known = n
	}
	desired, ok, err := s.cfg.Dir.Desired(caller.ID)
	if err == nil && wait > 0 && generationOf(desired, ok) == known {
		desired, ok, err = s.awaitChange(r.Context(), caller.ID, known, wait)
	}
	if err != nil {
		req.outcome = "error"
		s.log.Error("pull request: read the desired generation", "host", caller.ID, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	answer := pullapi.DesiredAnswer{CachePublicKey: s.cacheKey.Public()}
	if ok {
		answer.Desired = &desired
	}
	body, err := json.Marshal(answer)
	if err != nil {
		req.outcome = "error"
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sig, err := pullauth.SignResponse(s.signer, caller.ID, caller.Nonce, body)
	if err != nil {
		req.outcome = "error"
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(pullauth.HeaderServerSignature, sig)
	_, _ = w.Write(body)
}

func generationOf(d pulldir.Desired, ok bool) int64 {
	if !ok {
		return 0
	}
	return d.Generation
}

// serveReport records a host's report.
func (s *Server) serveReport(w http.ResponseWriter, req *request, caller pullauth.Caller, body []byte) {
	var rep pulldir.Report
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		req.outcome = refusedBadRequest
		http.Error(w, "report: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch rep.Result {
	case pulldir.ResultActivated, pulldir.ResultRolledBack, pulldir.ResultFetchFailed, pulldir.ResultFailed:
	default:
		req.outcome = refusedBadRequest
		http.Error(w, fmt.Sprintf("report: unknown result %q", rep.Result), http.StatusBadRequest)
		return
	}
	rep.ReceivedAt = time.Now().UTC().Format(time.RFC3339Nano)
	if err := s.cfg.Dir.AddReport(caller.ID, rep); err != nil {
		req.outcome = "error"
		s.log.Error("pull request: record the report", "host", caller.ID, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.log.Info("host report", "host", caller.ID, "generation", rep.Generation, "result", rep.Result, "reason", rep.Reason, "current", rep.Current)
	w.WriteHeader(http.StatusNoContent)
}
