package termsafe

import "testing"

func TestName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web-1", "web-1"},
		{"grüße", "grüße"},
		{"with space", "with space"},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"over\rwrite", `"over\rwrite"`},
		{"a\u202eb", `"a\u202eb"`},
		{"", `""`},
		{"bad\xffutf8", `"bad\xffutf8"`},
	}
	for _, tt := range tests {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab"},
		{"\x1b[2Jcleared", `\x1b[2Jcleared`},
		{"progress\rover", `progress\rover`},
		{"bidi \u202e override", `bidi \u202e override`},
		{"bad \xff byte", `bad \xff byte`},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
