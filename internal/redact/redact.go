// Package redact replaces known secret values in text meant for people:
// log lines, progress messages, errors and diagnostics. The engine and the
// provider SDK share it, so a secret is hidden the same way wherever
// provider text reaches a user.
package redact

import (
	"encoding/json"
	"strings"
	"sync"
)

// Marker replaces a secret in redacted text.
const Marker = "(sensitive)"

// MinSecret is the length below which a value is not treated as a secret:
// shorter values would blot out ordinary text (a file mode next to a
// secret) and are no secret worth the name.
const MinSecret = 8

// minLine is the length from which one line of a multi-line secret (a
// private key) is a secret of its own, since programs print lines.
const minLine = 16

// MinFragment is the length from which a piece of a secret line at the
// very start or end of a text is redacted: a line cut in two by a
// splitter shows each half at an edge of its piece.
const MinFragment = 8

// Set is a set of secrets, safe for concurrent use. The zero value is an
// empty set.
type Set struct {
	mu      sync.RWMutex
	secrets map[string]struct{}
	// lines are the single lines among the secrets, whose pieces are
	// looked for at the edges of a text.
	lines map[string]struct{}
}

// Add remembers a secret, and each long enough line of it.
func (s *Set) Add(secret string) {
	if len(secret) < MinSecret {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets == nil {
		s.secrets = map[string]struct{}{}
		s.lines = map[string]struct{}{}
	}
	s.secrets[secret] = struct{}{}
	if !strings.Contains(secret, "\n") {
		s.lines[secret] = struct{}{}
		return
	}
	for _, line := range strings.Split(secret, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if len(strings.TrimSpace(line)) >= minLine {
			s.secrets[line] = struct{}{}
			s.lines[line] = struct{}{}
		}
	}
}

// Empty reports whether the set holds no secret.
func (s *Set) Empty() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.secrets) == 0
}

// Redact replaces every secret in text, and a piece of a secret line that
// text starts or ends with, or is (at least MinFragment bytes), by Marker.
func (s *Set) Redact(text string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.secrets) == 0 || text == "" {
		return text
	}
	text = s.redactWhole(text)
	head, tail := 0, 0
	for line := range s.lines {
		if len(text) >= MinFragment && strings.Contains(line, text) {
			// A piece cut from inside a line at both ends.
			return Marker
		}
		head = max(head, pieceAtStart(text, line))
		tail = max(tail, pieceAtEnd(text, line))
	}
	if head+tail > len(text) {
		return Marker
	}
	if tail > 0 {
		text = text[:len(text)-tail] + Marker
	}
	if head > 0 {
		text = Marker + text[head:]
	}
	return text
}

// RedactWhole replaces every whole secret in text by Marker, and leaves
// pieces at the edges alone: for text that a splitter goes on reading,
// where HeldBack says how much of the end must wait.
func (s *Set) RedactWhole(text string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.redactWhole(text)
}

// redactWhole is RedactWhole with the lock held.
func (s *Set) redactWhole(text string) string {
	// Longer secrets first, so a whole key goes before its lines.
	for _, secret := range s.byLength() {
		if strings.Contains(text, secret) {
			text = strings.ReplaceAll(text, secret, Marker)
		}
	}
	return text
}

// byLength lists the secrets longest first; the caller holds the lock.
func (s *Set) byLength() []string {
	out := make([]string, 0, len(s.secrets))
	for secret := range s.secrets {
		out = append(out, secret)
	}
	// Insertion into a sorted slice is enough for the handful of secrets
	// a run knows; sort.Slice would do the same.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// pieceAtStart is the length of the longest proper suffix of line (at
// least MinFragment long) that text starts with, or 0.
func pieceAtStart(text, line string) int {
	// A piece at the start ends with the line's last MinFragment bytes:
	// look for those in the first len(line)-1 bytes only, from the right.
	window := text[:min(len(text), len(line)-1)]
	end := line[len(line)-MinFragment:]
	for limit := len(window); limit >= MinFragment; {
		i := strings.LastIndex(window[:limit], end)
		if i < 0 {
			return 0
		}
		piece := window[:i+MinFragment]
		if strings.HasSuffix(line, piece) {
			return len(piece)
		}
		limit = i + MinFragment - 1
	}
	return 0
}

// pieceAtEnd is the length of the longest proper prefix of line (at least
// MinFragment long) that text ends with, or 0.
func pieceAtEnd(text, line string) int {
	if len(text) < MinFragment {
		return 0
	}
	// A piece at the end starts with the line's first MinFragment bytes:
	// look for those in the last len(line) bytes only.
	window := text[max(0, len(text)-len(line)+1):]
	start := line[:MinFragment]
	for off := 0; off <= len(window)-MinFragment; {
		i := strings.Index(window[off:], start)
		if i < 0 {
			return 0
		}
		piece := window[off+i:]
		if strings.HasPrefix(line, piece) {
			return len(piece)
		}
		off += i + 1
	}
	return 0
}

// HeldBack is how many bytes at the end of text must wait for what follows
// before they can be shown: the longest suffix of text that is a proper
// prefix of a secret, which the next bytes may complete. A splitter that
// emits text in pieces redacts first and holds these bytes back.
func (s *Set) HeldBack(text string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	held := 0
	for secret := range s.secrets {
		// Candidates start where the secret's first byte appears in the
		// last len(secret)-1 bytes; the earliest that fits is the longest.
		from := max(0, len(text)-len(secret)+1)
		for i := from; i < len(text)-held; i++ {
			if text[i] == secret[0] && strings.HasPrefix(secret, text[i:]) {
				held = len(text) - i
				break
			}
		}
	}
	return held
}

// AddJSON remembers every string in a JSON value as a secret; a value that
// holds no string (a number, say) is remembered as its JSON text.
func (s *Set) AddJSON(doc json.RawMessage) {
	var decoded any
	if json.Unmarshal(doc, &decoded) != nil {
		return
	}
	if _, ok := decoded.(string); !ok {
		if _, composite := decoded.(map[string]any); !composite {
			if _, list := decoded.([]any); !list {
				s.Add(string(doc))
				return
			}
		}
	}
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case string:
			s.Add(t)
		case map[string]any:
			for _, y := range t {
				walk(y)
			}
		case []any:
			for _, y := range t {
				walk(y)
			}
		}
	}
	walk(decoded)
}
