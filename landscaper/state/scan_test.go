package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// TestScanFields: the quick split of an object agrees with objectFields
// where it answers, and declines what it does not handle plainly.
func TestScanFields(t *testing.T) {
	tests := []struct {
		doc string
		ok  bool
	}{
		{`{}`, true},
		{` { "a" : 1 , "b":"x,}]" ,"c":{"d":[1,{"e":null}]},"f":true,"g":-1.5e3}`, true},
		{`{"a":"say \"hi\"","b":[]}`, true},
		{`{"a":[1,2],"z":false}`, true},
		{`{"a\u0062":1}`, false},
		{`{"a":1,"a":2}`, false},
		{`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"11":11,"12":12,"13":13,"14":14,"15":15,"16":16,"17":17,"18":18}`, true},
		{`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"11":11,"12":12,"13":13,"14":14,"15":15,"16":16,"17":17,"3":18}`, false},
		{`[1,2]`, false},
		{`"a"`, false},
	}
	for _, tt := range tests {
		got, ok := scanFields([]byte(tt.doc))
		if ok != tt.ok {
			t.Errorf("%s: ok = %v, want %v", tt.doc, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		want, err := objectFields([]byte(tt.doc))
		if err != nil {
			t.Fatalf("%s: objectFields: %v", tt.doc, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d fields, want %d", tt.doc, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].name != want[i].name || string(got[i].value) != string(want[i].value) {
				t.Errorf("%s: field %d is %s=%s, want %s=%s", tt.doc, i, got[i].name, got[i].value, want[i].name, want[i].value)
			}
		}
	}
}

// BenchmarkParse reads a state of 10,000 resources (go test -bench Parse
// ./landscaper/state/).
func BenchmarkParse(b *testing.B) {
	s := &State{Version: FormatVersion, Lineage: "bench", Resources: map[string]*Resource{}}
	for i := range 10000 {
		s.Resources[fmt.Sprintf("f%d", i)] = &Resource{
			Type: "local.file", Provider: "local",
			Inputs:  json.RawMessage(fmt.Sprintf(`{"contents":"member %d\n","name":"out/f%d"}`, i, i)),
			Outputs: json.RawMessage(fmt.Sprintf(`{"path":"/srv/out/f%d","sha256":"%064d"}`, i, i)),
		}
	}
	data, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriteKey: a key written as it is reads back as the same string as
// one encoded by encoding/json.
func TestWriteKey(t *testing.T) {
	for _, k := range []string{"f1", "web.frontend", "a b<&>", `say "hi"`, `back\slash`, "é", "line\nbreak", "\u2028", ""} {
		var buf bytes.Buffer
		writeKey(&buf, k)
		var back string
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back != k {
			t.Errorf("key %q written as %s reads back as %q (%v)", k, buf.Bytes(), back, err)
		}
	}
}
