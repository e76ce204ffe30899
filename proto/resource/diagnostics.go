package resource

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity says how bad a diagnostic is.
type Severity int

// The severities.
const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

// Diagnostic is a message about inputs or an operation, optionally about
// one attribute.
type Diagnostic struct {
	Severity  Severity
	Summary   string
	Detail    string
	Attribute Path
}

// Error makes an error diagnostic.
func Error(path Path, summary string, detailf string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityError, Summary: summary, Detail: fmt.Sprintf(detailf, args...), Attribute: path}
}

// String renders the diagnostic on one line: "attr: summary: detail".
func (d Diagnostic) String() string {
	var b strings.Builder
	if len(d.Attribute) > 0 {
		b.WriteString(d.Attribute.String())
		b.WriteString(": ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// HasError reports whether any diagnostic is an error.
func (ds Diagnostics) HasError() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Err returns the error diagnostics as one error, or nil.
func (ds Diagnostics) Err() error {
	var msgs []string
	for _, d := range ds {
		if d.Severity == SeverityError {
			msgs = append(msgs, d.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return &DiagnosticsError{Diagnostics: ds}
}

// DiagnosticsError is an error made of diagnostics.
type DiagnosticsError struct {
	Diagnostics Diagnostics
}

func (e *DiagnosticsError) Error() string {
	var msgs []string
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			msgs = append(msgs, d.String())
		}
	}
	return strings.Join(msgs, "; ")
}

// Step is one step of a Path: an attribute name, a map key or a list index.
type Step struct {
	Name  string
	Key   string
	Index int
	Kind  StepKind
}

// StepKind tells which field of a Step is set.
type StepKind int

// The step kinds.
const (
	StepAttribute StepKind = iota
	StepKey
	StepIndex
)

// Path addresses a value inside a JSON document.
type Path []Step

// AttrPath builds a path of attribute names.
func AttrPath(names ...string) Path {
	p := make(Path, len(names))
	for i, n := range names {
		p[i] = Step{Kind: StepAttribute, Name: n}
	}
	return p
}

// Attr returns the path extended by an attribute name.
func (p Path) Attr(name string) Path {
	return append(p[:len(p):len(p)], Step{Kind: StepAttribute, Name: name})
}

// Key returns the path extended by a map key.
func (p Path) Key(key string) Path {
	return append(p[:len(p):len(p)], Step{Kind: StepKey, Key: key})
}

// Index returns the path extended by a list index.
func (p Path) Index(i int) Path {
	return append(p[:len(p):len(p)], Step{Kind: StepIndex, Index: i})
}

// String renders the path as Nix would address it: a.b."c d"[0].
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		switch s.Kind {
		case StepAttribute, StepKey:
			name := s.Name
			if s.Kind == StepKey {
				name = s.Key
			}
			if i > 0 {
				b.WriteByte('.')
			}
			if isPlainName(name) {
				b.WriteString(name)
			} else {
				b.WriteString(strconv.Quote(name))
			}
		case StepIndex:
			fmt.Fprintf(&b, "[%d]", s.Index)
		}
	}
	return b.String()
}

// HasPrefix reports whether q is p or lies below it.
func (p Path) HasPrefix(q Path) bool {
	if len(q) > len(p) {
		return false
	}
	for i := range q {
		if !p[i].same(q[i]) {
			return false
		}
	}
	return true
}

// same compares steps; an attribute and a map key with the same name are
// the same step (both are members of a JSON object, and the text form of a
// path does not tell them apart).
func (s Step) same(o Step) bool {
	if s.Kind == StepIndex || o.Kind == StepIndex {
		return s.Kind == o.Kind && s.Index == o.Index
	}
	return s.objectKey() == o.objectKey()
}

func (s Step) objectKey() string {
	if s.Kind == StepKey {
		return s.Key
	}
	return s.Name
}

func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r == '-' || r == '\'' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
