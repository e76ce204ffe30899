// Package termsafe makes text that came from a deployment or a provider
// safe to print on a terminal: control characters (an ANSI escape, a
// carriage return) and invisible format characters (bidirectional
// overrides) are shown as escapes instead of acting on the terminal.
package termsafe

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name returns a name (a member's, say) as it is when every character in
// it prints as itself, and quoted with Go escapes otherwise, the way the
// plan shows input values.
func Name(s string) string {
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// Text returns text with every character that would not print as itself
// escaped ("\x1b", "\u202e"); line breaks and tabs are kept, so messages
// of several lines stay readable.
func Text(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && notPrintable(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case r == '\n' || r == '\t' || !notPrintable(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
