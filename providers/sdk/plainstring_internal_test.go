package sdk

import (
	"encoding/json"
	"testing"
)

// TestPlainString checks the decoder's shortcut for plain strings against
// encoding/json: where it answers, it gives what json.Unmarshal gives; it
// leaves escapes, control characters and invalid UTF-8 to the decoder.
func TestPlainString(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{`"hello"`, true},
		{`""`, true},
		{`"grüße, 日本"`, true},
		{`"a\"b"`, false},
		{`"a\\b"`, false},
		{`"a\nb"`, false},
		{`"\u00e9"`, false},
		{"\"tab\there\"", false},
		{"\"bad \xff utf-8\"", false},
		{`"unterminated`, false},
		{`42`, false},
		{`"`, false},
		{`"a"b"`, false},
	} {
		got, ok := plainString([]byte(tc.raw))
		if ok != tc.want {
			t.Errorf("plainString(%q): ok %v, want %v", tc.raw, ok, tc.want)
			continue
		}
		if !ok {
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(tc.raw), &want); err != nil {
			t.Errorf("plainString(%q) accepted what json.Unmarshal refuses: %v", tc.raw, err)
		} else if got != want {
			t.Errorf("plainString(%q) = %q, json.Unmarshal gives %q", tc.raw, got, want)
		}
	}
}

func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`"hello"`, `"a\"b"`, "\"\xff\"", `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := plainString(raw)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("plainString(%q) accepted what json.Unmarshal refuses: %v", raw, err)
		}
		if got != want {
			t.Fatalf("plainString(%q) = %q, json.Unmarshal gives %q", raw, got, want)
		}
	})
}
