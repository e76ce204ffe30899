package resource

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Lookup returns the value at path p inside the JSON document doc.
func Lookup(doc json.RawMessage, p Path) (json.RawMessage, bool) {
	cur := doc
	for _, s := range p {
		switch s.Kind {
		case StepAttribute, StepKey:
			var obj map[string]json.RawMessage
			if json.Unmarshal(cur, &obj) != nil {
				return nil, false
			}
			name := s.Name
			if s.Kind == StepKey {
				name = s.Key
			}
			v, ok := obj[name]
			if !ok {
				return nil, false
			}
			cur = v
		case StepIndex:
			var list []json.RawMessage
			if json.Unmarshal(cur, &list) != nil || s.Index < 0 || s.Index >= len(list) {
				return nil, false
			}
			cur = list[s.Index]
		}
	}
	return cur, true
}

// stepName is the name an attribute or key step selects in an object; ok
// is false for a list index.
func (s Step) stepName() (string, bool) {
	switch s.Kind {
	case StepAttribute:
		return s.Name, true
	case StepKey:
		return s.Key, true
	}
	return "", false
}

// ValueAt returns the value at p inside a decoded JSON document (objects
// as map[string]any, lists as []any).
func ValueAt(v any, p Path) (any, bool) {
	for _, step := range p {
		switch x := v.(type) {
		case map[string]any:
			name, ok := step.stepName()
			if !ok {
				return nil, false
			}
			if v, ok = x[name]; !ok {
				return nil, false
			}
		case []any:
			if step.Kind != StepIndex || step.Index < 0 || step.Index >= len(x) {
				return nil, false
			}
			v = x[step.Index]
		default:
			return nil, false
		}
	}
	return v, true
}

// NullAt returns a decoded JSON document with the value at p replaced by
// null, copying what it changes (v itself is left as it is); a path that
// leads nowhere changes nothing.
func NullAt(v any, p Path) any {
	if len(p) == 0 {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		name, ok := p[0].stepName()
		e, found := x[name]
		if !ok || !found {
			return v
		}
		c := make(map[string]any, len(x))
		for k, val := range x {
			c[k] = val
		}
		c[name] = NullAt(e, p[1:])
		return c
	case []any:
		i := p[0].Index
		if p[0].Kind != StepIndex || i < 0 || i >= len(x) {
			return v
		}
		c := append([]any(nil), x...)
		c[i] = NullAt(x[i], p[1:])
		return c
	}
	return v
}

// ParsePath reads a path written as Path.String writes it (a.b."c d"[0]).
func ParsePath(s string) (Path, error) {
	var p Path
	i := 0
	for i < len(s) {
		switch {
		case s[i] == '.':
			i++
		case s[i] == '[':
			j := i + 1
			for j < len(s) && s[j] != ']' {
				j++
			}
			if j == len(s) {
				return nil, fmt.Errorf("path %q: unterminated [", s)
			}
			n, err := strconv.Atoi(s[i+1 : j])
			if err != nil {
				return nil, fmt.Errorf("path %q: bad index: %w", s, err)
			}
			p = p.Index(n)
			i = j + 1
		case s[i] == '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", s, err)
			}
			name, _ := strconv.Unquote(q)
			p = p.Attr(name)
			i += len(q)
		default:
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			p = p.Attr(s[i:j])
			i = j
		}
	}
	return p, nil
}

// MarshalText writes the path in its string form, so paths can be JSON
// object keys and values.
func (p Path) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a path in its string form.
func (p *Path) UnmarshalText(b []byte) error {
	q, err := ParsePath(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Covered reports whether p is one of paths or lies below one of them: a
// value inside a sensitive input is sensitive, one inside an unknown input
// is unknown.
func Covered(p Path, paths []Path) bool {
	for _, s := range paths {
		if p.HasPrefix(s) {
			return true
		}
	}
	return false
}
