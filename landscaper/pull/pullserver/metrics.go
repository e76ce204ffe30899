package pullserver

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

// Outcomes of a refused request, the label of
// landscaper_pull_refused_total.
const (
	refusedUnsigned     = "unsigned"
	refusedBadKey       = "bad-key"
	refusedBadSignature = "bad-signature"
	refusedStale        = "stale"
	refusedReplay       = "replay"
	refusedOtherHost    = "other-host"
	refusedUnknownHost  = "unknown-host"
	refusedNotInClosure = "not-in-closure"
	refusedBadRequest   = "bad-request"
	// Enrollment in a role (serveEnroll).
	refusedUnknownRole       = "unknown-role"
	refusedBadToken          = "bad-token"
	refusedEnrolledElsewhere = "enrolled-elsewhere"
)

var refusals = []string{refusedUnsigned, refusedBadKey, refusedBadSignature, refusedStale, refusedReplay, refusedOtherHost, refusedUnknownHost, refusedNotInClosure, refusedBadRequest, refusedUnknownRole, refusedBadToken, refusedEnrolledElsewhere}

// refusalOf is the outcome of a request whose signature was refused, or
// "error" when the check itself failed.
func refusalOf(err error) string {
	for _, r := range []struct {
		err     error
		outcome string
	}{
		{pullauth.ErrUnsigned, refusedUnsigned},
		{pullauth.ErrBadKey, refusedBadKey},
		{pullauth.ErrBadSignature, refusedBadSignature},
		{pullauth.ErrStale, refusedStale},
		{pullauth.ErrReplay, refusedReplay},
	} {
		if errors.Is(err, r.err) {
			return r.outcome
		}
	}
	return "error"
}

// metrics count the API's requests by endpoint and outcome, and the
// long-polls waiting now.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]int64
	waiting  atomic.Int64
}

func newMetrics() *metrics { return &metrics{requests: map[[2]string]int64{}} }

func (m *metrics) count(endpoint, outcome string) {
	m.mu.Lock()
	m.requests[[2]string{endpoint, outcome}]++
	m.mu.Unlock()
}

// Refused is how many requests were refused for the reason (an outcome
// such as "replay" or "other-host").
func (s *Server) Refused(reason string) int64 {
	s.metrics.mu.Lock()
	defer s.metrics.mu.Unlock()
	var n int64
	for k, v := range s.metrics.requests {
		if k[1] == reason {
			n += v
		}
	}
	return n
}

// WriteMetrics writes the counters in the Prometheus text format:
// landscaper_pull_requests_total{endpoint,outcome},
// landscaper_pull_refused_total{reason} (every reason, zeros included)
// and the gauge landscaper_pull_waiting (long-polls held now).
func (s *Server) WriteMetrics(w io.Writer) {
	s.metrics.mu.Lock()
	keys := make([][2]string, 0, len(s.metrics.requests))
	for k := range s.metrics.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	counts := make([]int64, len(keys))
	for i, k := range keys {
		counts[i] = s.metrics.requests[k]
	}
	s.metrics.mu.Unlock()
	fmt.Fprintln(w, "# HELP landscaper_pull_requests_total Pull API requests by endpoint and outcome.")
	fmt.Fprintln(w, "# TYPE landscaper_pull_requests_total counter")
	for i, k := range keys {
		fmt.Fprintf(w, "landscaper_pull_requests_total{endpoint=%q,outcome=%q} %d\n", k[0], k[1], counts[i])
	}
	fmt.Fprintln(w, "# HELP landscaper_pull_refused_total Pull API requests refused, by reason.")
	fmt.Fprintln(w, "# TYPE landscaper_pull_refused_total counter")
	for _, r := range refusals {
		fmt.Fprintf(w, "landscaper_pull_refused_total{reason=%q} %d\n", r, s.Refused(r))
	}
	fmt.Fprintln(w, "# HELP landscaper_pull_waiting Long-polls of the desired generation held now (about one per connected agent).")
	fmt.Fprintln(w, "# TYPE landscaper_pull_waiting gauge")
	fmt.Fprintf(w, "landscaper_pull_waiting %d\n", s.metrics.waiting.Load())
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
