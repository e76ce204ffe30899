package providerset

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestSchemaCache: a schema comes back for the same binary, not for one
// that changed; writing the cache drops the entries of binaries that are
// gone (it is read whole by every command); a damaged file is an empty
// cache.
func TestSchemaCache(t *testing.T) {
	dir := t.TempDir()
	binary := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kept, gone, changed := binary("kept", "a"), binary("gone", "b"), binary("changed", "c")
	path := filepath.Join(dir, "cache", "schemas.json")
	c := NewSchemaCache(path)
	for _, b := range []string{kept, gone, changed} {
		if err := c.Put(b, &resource.ProviderSchema{Name: filepath.Base(b)}); err != nil {
			t.Fatalf("Put %s: %v", b, err)
		}
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed, []byte("changed, longer"), 0o755); err != nil {
		t.Fatal(err)
	}
	c = NewSchemaCache(path)
	if s, ok := c.Get(kept); !ok || s.Name != "kept" {
		t.Errorf("Get(kept) = %v, %v; want its schema", s, ok)
	}
	if _, ok := c.Get(changed); ok {
		t.Errorf("Get(changed) found the schema of the binary before it changed")
	}
	if err := c.Put(changed, &resource.ProviderSchema{Name: "changed again"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range entries {
		names = append(names, filepath.Base(k))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"changed", "kept"}) {
		t.Errorf("cache holds %v, want changed and kept (gone's binary was removed)", names)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := NewSchemaCache(path).Get(kept); ok {
		t.Errorf("a damaged cache gave a schema")
	}
}
