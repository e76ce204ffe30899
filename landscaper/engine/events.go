package engine

import (
	"strings"
	"sync"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// EventKind says what happened.
type EventKind string

// The kinds of events an apply reports.
const (
	EventStarted  EventKind = "started"
	EventLog      EventKind = "log"
	EventProgress EventKind = "progress"
	EventDone     EventKind = "done"
	EventFailed   EventKind = "failed"
	EventSkipped  EventKind = "skipped"
	// EventInfo is a message about the run, not about one member.
	EventInfo EventKind = "info"
)

// Event is something that happened during a run. Messages never hold a
// secret: the engine redacts known sensitive values from provider text.
type Event struct {
	Time    time.Time       `json:"time"`
	Kind    EventKind       `json:"kind"`
	Member  string          `json:"member,omitempty"`
	Type    string          `json:"type,omitempty"`
	Action  resource.Action `json:"-"`
	Message string          `json:"message,omitempty"`
	// Fraction is the progress of an operation (0..1), or negative.
	Fraction float64       `json:"fraction,omitempty"`
	Elapsed  time.Duration `json:"-"`
}

// Observer receives events; it must be safe for concurrent use.
type Observer interface {
	Event(Event)
}

// nopObserver drops events.
type nopObserver struct{}

func (nopObserver) Event(Event) {}

// redactor replaces known secret values in text. Values shorter than eight
// bytes are not redacted (they would blot out ordinary text, such as a file
// mode next to a secret, and are no secret worth the name).
type redactor struct {
	mu      sync.RWMutex
	secrets map[string]bool
}

func newRedactor() *redactor { return &redactor{secrets: map[string]bool{}} }

func (r *redactor) add(secret string) {
	if len(secret) < 8 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[secret] = true
	// A multi-line secret (a private key) is also redacted line by line,
	// since providers and commands print lines.
	for _, line := range strings.Split(secret, "\n") {
		if len(strings.TrimSpace(line)) >= 16 {
			r.secrets[line] = true
		}
	}
}

func (r *redactor) redact(text string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for s := range r.secrets {
		if strings.Contains(text, s) {
			text = strings.ReplaceAll(text, s, "(sensitive)")
		}
	}
	return text
}

// memberSink forwards a provider's events for one member to the observer.
type memberSink struct {
	e      *Engine
	member string
	typ    string
	action resource.Action
}

func (s memberSink) Log(text string) {
	s.e.emit(Event{Kind: EventLog, Member: s.member, Type: s.typ, Action: s.action, Message: s.e.redact.redact(text)})
}

func (s memberSink) Progress(message string, fraction float64) {
	s.e.emit(Event{Kind: EventProgress, Member: s.member, Type: s.typ, Action: s.action, Message: s.e.redact.redact(message), Fraction: fraction})
}
