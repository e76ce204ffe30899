package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// nestedSchema has a list of objects whose attributes must be shown.
func nestedSchema() *resource.ProviderSchema {
	return &resource.ProviderSchema{Name: "p", Version: "1", Types: map[string]*resource.TypeSchema{"t": {
		Inputs: []resource.Attribute{{Name: "checks", Type: "list(object)", Attributes: []resource.Attribute{
			{Name: "timeout", Type: "number", Default: json.RawMessage("10"), Description: "Seconds. From 0.1 to 3600."},
		}}},
	}}}
}

func TestPrintedSchemaShowsNestedAttributes(t *testing.T) {
	var out bytes.Buffer
	printSchema(Env{Stdout: &out}, "p", listedProvider{}, nestedSchema())
	if !hasLine(out.String(), "        .timeout", "[default 10] Seconds. From 0.1 to 3600.") {
		t.Errorf("the nested attribute is not shown under its list:\n%s", out.String())
	}
	b, err := json.Marshal(schemaJSON(nestedSchema(), "/bin/p"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"attributes":[{"name":"timeout","type":"number","default":10,`) {
		t.Errorf("provider schema's JSON leaves out the nested attribute: %s", b)
	}
}

// hasLine reports whether a line of text starts with prefix and ends
// with suffix.
func hasLine(text, prefix, suffix string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) && strings.HasSuffix(line, suffix) {
			return true
		}
	}
	return false
}
