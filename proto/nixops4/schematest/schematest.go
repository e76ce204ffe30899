// Package schematest checks messages of NixOps4's resource protocol against
// the schema NixOps4 publishes (testdata/README.md names its source), for the
// tests of the packages that speak the protocol.
package schematest

import (
	"embed"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/jsonschema"
)

//go:embed testdata/resource-schema-v0.json testdata/json-patch.json testdata/examples
var files embed.FS

// patchURI is the document the schema's Patch definition refers to.
const patchURI = "https://json.schemastore.org/json-patch.json"

// Schema is the published v0 schema, loaded.
type Schema struct {
	set *jsonschema.Set
}

// Load loads the schema; it fails the test if it cannot.
func Load(t testing.TB) *Schema {
	t.Helper()
	main, err := files.ReadFile("testdata/resource-schema-v0.json")
	if err != nil {
		t.Fatal(err)
	}
	patch, err := files.ReadFile("testdata/json-patch.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := jsonschema.Load(main, map[string][]byte{patchURI: patch})
	if err != nil {
		t.Fatalf("load NixOps4's schema: %v", err)
	}
	return &Schema{set: set}
}

// Check validates a JSON document against a definition of the schema
// ("Request", "Response", "CreateResourceRequest", ...).
func (s *Schema) Check(definition string, doc []byte) error {
	return s.set.Validate("#/definitions/"+definition, doc)
}

// Request fails the test unless line is a valid request message.
func (s *Schema) Request(t testing.TB, line []byte) {
	t.Helper()
	if err := s.Check("Request", line); err != nil {
		t.Errorf("request %s does not follow NixOps4's schema: %v", line, err)
	}
}

// Response fails the test unless line is a valid response message.
func (s *Schema) Response(t testing.TB, line []byte) {
	t.Helper()
	if err := s.Check("Response", line); err != nil {
		t.Errorf("response %s does not follow NixOps4's schema: %v", line, err)
	}
}

// Example returns one of NixOps4's example messages by its name
// ("CreateResourceRequest"): the inner object, not wrapped.
func Example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile("testdata/examples/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
