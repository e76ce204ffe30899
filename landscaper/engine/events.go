package engine

import (
	"errors"
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
	// EventWarning is a provider's warning about a member's operation,
	// sent when the operation has ended.
	EventWarning EventKind = "warning"
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

// redactedError is an error whose text has been through the redaction of
// known secrets. It keeps the original for errors.Is (a cancelled context,
// say) but not for errors.As, so the original text cannot be printed by
// accident.
type redactedError struct {
	text  string
	cause error
}

func (r *redactedError) Error() string { return r.text }

func (r *redactedError) Is(target error) bool { return errors.Is(r.cause, target) }

// redactError returns err with every known secret removed from its text;
// every error the engine returns goes through it.
func (e *Engine) redactError(err error) error {
	if err == nil {
		return nil
	}
	if _, done := err.(*redactedError); done {
		return err
	}
	return &redactedError{text: e.redact.Redact(err.Error()), cause: err}
}

// memberSink forwards a provider's events for one member to the observer.
type memberSink struct {
	e      *Engine
	member string
	typ    string
	action resource.Action
}

func (s memberSink) Log(text string) {
	s.e.emit(Event{Kind: EventLog, Member: s.member, Type: s.typ, Action: s.action, Message: s.e.redact.Redact(text)})
}

func (s memberSink) Progress(message string, fraction float64) {
	s.e.emit(Event{Kind: EventProgress, Member: s.member, Type: s.typ, Action: s.action, Message: s.e.redact.Redact(message), Fraction: fraction})
}

// Warnings forwards the warning diagnostics of an operation's result.
func (s memberSink) Warnings(ds resource.Diagnostics) {
	for _, d := range ds {
		if d.Severity != resource.SeverityWarning {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if len(d.Attribute) > 0 {
			msg = "inputs." + d.Attribute.String() + ": " + msg
		}
		s.e.emit(Event{Kind: EventWarning, Member: s.member, Type: s.typ, Action: s.action, Message: s.e.redact.Redact(msg)})
	}
}
