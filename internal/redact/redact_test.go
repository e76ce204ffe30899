package redact

import (
	"strings"
	"testing"
)

// keyLine is one 70-byte line of a made-up private key.
const keyLine = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"

var key = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + keyLine + "\nQyNTUxOQAAACDxY0Zb3n2pQkTjQ5x1b2rYv0ZL7o0bnqkq8p6a2o1ZTwAAAJgrAJb+KwCW\n-----END OPENSSH PRIVATE KEY-----\n"

func TestRedact(t *testing.T) {
	var s Set
	s.Add(key)
	s.Add("hunter2hunter2")
	s.Add("short") // below MinSecret: not a secret
	tests := []struct {
		name, text, want string
	}{
		{"whole key", "got " + key + " end", "got " + Marker + " end"},
		{"one line of the key", "line: " + keyLine + " done", "line: " + Marker + " done"},
		{"single-line secret", "password=hunter2hunter2;", "password=" + Marker + ";"},
		{"short value kept", "mode short", "mode short"},
		{"ordinary text kept", "nothing to see here, 0644", "nothing to see here, 0644"},
		{"piece at the end", strings.Repeat("x", 100) + keyLine[:34], strings.Repeat("x", 100) + Marker},
		{"piece at the start", keyLine[34:] + " and more", Marker + " and more"},
		{"piece shorter than MinFragment at the end", "abc" + keyLine[:MinFragment-1], "abc" + keyLine[:MinFragment-1]},
		{"piece in the middle is not a cut", "a " + keyLine[:20] + " b", "a " + keyLine[:20] + " b"},
		{"text that is all piece", keyLine[3:40], Marker},
		{"both edges", keyLine[40:] + " middle " + keyLine[:30], Marker + " middle " + Marker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Redact(tt.text); got != tt.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestRedactEmptySet(t *testing.T) {
	var s Set
	if !s.Empty() {
		t.Fatal("a new set is not empty")
	}
	if got := s.Redact("text " + keyLine); got != "text "+keyLine {
		t.Fatalf("an empty set changed the text: %q", got)
	}
}

func TestHeldBack(t *testing.T) {
	var s Set
	s.Add(key)
	tests := []struct {
		name string
		text string
		want int
	}{
		{"no secret begins at the end", "plain text.", 0},
		{"a key line begins", "xxxx" + keyLine[:34], 34},
		{"the key begins", "yyy" + key[:50], 50},
		{"a whole secret is not held", "zz" + keyLine, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.HeldBack(tt.text); got != tt.want {
				t.Errorf("HeldBack(%q) = %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}

// TestSplitAfterRedactNeverShowsPieces cuts a stream holding a key line at
// every offset the way a line splitter does (redact, hold back, emit) and
// checks that no emitted piece holds MinFragment bytes of the line.
func TestSplitAfterRedactNeverShowsPieces(t *testing.T) {
	var s Set
	s.Add(key)
	stream := strings.Repeat("a", 40) + keyLine + strings.Repeat("b", 40)
	for cut := 1; cut < len(stream); cut++ {
		var shown []string
		pending := stream[:cut]
		text := s.RedactWhole(pending)
		held := s.HeldBack(text)
		shown = append(shown, text[:len(text)-held])
		rest := text[len(text)-held:] + stream[cut:]
		shown = append(shown, s.Redact(rest))
		for _, piece := range shown {
			for i := 0; i+MinFragment <= len(keyLine); i++ {
				if strings.Contains(piece, keyLine[i:i+MinFragment]) {
					t.Fatalf("cut at %d: piece %q shows %q of the key line", cut, piece, keyLine[i:i+MinFragment])
				}
			}
		}
	}
}
