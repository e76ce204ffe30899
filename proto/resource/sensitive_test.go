package resource

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDeclaredSensitive(t *testing.T) {
	attrs := []Attribute{
		{Name: "password", Type: "string", Sensitive: true},
		{Name: "name", Type: "string"},
		{Name: "auth", Type: "object", Attributes: []Attribute{{Name: "key", Type: "string", Sensitive: true}, {Name: "user", Type: "string"}}},
		{Name: "checks", Type: "list(object)", Attributes: []Attribute{{Name: "token", Type: "string", Sensitive: true}, {Name: "url", Type: "string"}}},
		{Name: "files", Type: "map(object)", Attributes: []Attribute{{Name: "contents", Type: "string", Sensitive: true}}},
	}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"nothing given", `{}`, nil},
		{"top level", `{"password":"x","name":"n"}`, []string{"password"}},
		{"inside an object", `{"auth":{"key":"k","user":"u"}}`, []string{"auth.key"}},
		{"each list element", `{"checks":[{"token":"a"},{"url":"u"},{"token":"b"}]}`, []string{"checks[0].token", "checks[2].token"}},
		{"each map value", `{"files":{"/b":{"contents":"y"},"/a":{"contents":"x"}}}`, []string{`files."/a".contents`, `files."/b".contents`}},
		{"not an object", `[1]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range DeclaredSensitive(attrs, json.RawMessage(tt.doc)) {
				got = append(got, p.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("sensitive paths %q, want %q", got, tt.want)
			}
		})
	}
}
