package sdk

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/landscaper-nix/landscaper/internal/redact"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// newOp makes the context of one operation. The sensitive values among
// the given inputs and outputs become the operation's secrets: its log
// lines, progress messages and error texts never show them.
func newOp(typ, name string, sink resource.EventSink, values ...resource.Values) *Op {
	op := &Op{Type: typ, Name: name, sink: sink, secrets: &redact.Set{}}
	for _, v := range values {
		for _, p := range v.Sensitive {
			if raw, ok := resource.Lookup(v.JSON, p); ok {
				op.secrets.AddJSON(raw)
			}
		}
	}
	return op
}

// Redact returns text with the operation's sensitive values (and pieces of
// them at its edges) replaced by "(sensitive)". Logf, Progress and the
// errors an operation returns are redacted already.
func (o *Op) Redact(text string) string {
	if o.secrets == nil {
		return text
	}
	return o.secrets.Redact(text)
}

// redactDiagnostics redacts the texts of diagnostics.
func (o *Op) redactDiagnostics(ds resource.Diagnostics) resource.Diagnostics {
	if o.secrets == nil || o.secrets.Empty() {
		return ds
	}
	out := make(resource.Diagnostics, len(ds))
	for i, d := range ds {
		d.Summary, d.Detail = o.Redact(d.Summary), o.Redact(d.Detail)
		out[i] = d
	}
	return out
}

// LineLog turns what a program writes (its stderr, say) into log lines of
// an operation, and keeps the last lines for an error message. Secrets are
// redacted before a line longer than the limit is cut, and the bytes that
// may begin a secret wait for the next write, so no cut shows a piece of
// one. Write is not safe for concurrent use.
type LineLog struct {
	op      *Op
	maxLine int
	keep    int
	partial []byte
	tail    []string
}

// NewLineLog returns a LineLog for op that cuts lines longer than maxLine
// bytes and keeps the last keep lines.
func NewLineLog(op *Op, maxLine, keep int) *LineLog {
	return &LineLog{op: op, maxLine: maxLine, keep: keep}
}

// Write sends each complete line in p as a log line.
func (l *LineLog) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) >= l.maxLine {
		// Redact the unfinished line as it stands, cut it, and keep back
		// what may be the start of a secret that the next write ends.
		text, held := string(l.partial), 0
		if l.op.secrets != nil {
			text = l.op.secrets.RedactWhole(text)
			held = l.op.secrets.HeldBack(text)
		}
		ready := text[:len(text)-held]
		for len(ready) >= l.maxLine {
			l.emit(ready[:l.maxLine])
			ready = ready[l.maxLine:]
		}
		l.partial = []byte(ready + text[len(text)-held:])
	}
	// Keep the unfinished line in a buffer of its own, so the one that
	// was appended to does not grow without bound.
	l.partial = append([]byte(nil), l.partial...)
	return len(p), nil
}

func (l *LineLog) emit(line string) {
	s := l.op.Redact(strings.TrimSuffix(line, "\r"))
	l.op.Logf("%s", s)
	l.tail = append(l.tail, s)
	if len(l.tail) > l.keep {
		l.tail = l.tail[len(l.tail)-l.keep:]
	}
}

// Flush sends an unfinished last line.
func (l *LineLog) Flush() {
	if len(l.partial) > 0 {
		l.emit(string(l.partial))
		l.partial = nil
	}
}

// Tail is the last lines for an error message ("\nlast N lines of its
// stderr:\n..."), or "" when nothing was written.
func (l *LineLog) Tail() string {
	if len(l.tail) == 0 {
		return ""
	}
	return fmt.Sprintf("\nlast %d lines of its stderr:\n%s", len(l.tail), strings.Join(l.tail, "\n"))
}
