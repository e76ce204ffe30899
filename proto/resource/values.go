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
