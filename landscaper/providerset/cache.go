package providerset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// SchemaCache remembers providers' schemas by binary, so that a run starts
// only the providers it uses: the deployment's `providers` argument needs
// every provider's types, but not every provider's process.
type SchemaCache struct {
	path    string
	mu      sync.Mutex
	entries map[string]cachedSchema
	loaded  bool
}

type cachedSchema struct {
	// Stamp identifies the binary: size, modification time and inode.
	Stamp  string                   `json:"stamp"`
	Schema *resource.ProviderSchema `json:"schema"`
}

// NewSchemaCache keeps schemas in the file at path (created on first
// write, mode 0600).
func NewSchemaCache(path string) *SchemaCache {
	return &SchemaCache{path: path}
}

func stamp(binary string) (string, error) {
	info, err := os.Stat(binary)
	if err != nil {
		return "", err
	}
	var ino uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d-%d-%d", info.Size(), info.ModTime().UnixNano(), ino), nil
}

func (c *SchemaCache) load() {
	if c.loaded {
		return
	}
	c.loaded = true
	c.entries = map[string]cachedSchema{}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return
	}
	_ = json.Unmarshal(b, &c.entries) // a damaged cache is an empty one
}

// Get returns the cached schema of a binary, if the binary is unchanged.
func (c *SchemaCache) Get(binary string) (*resource.ProviderSchema, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	e, ok := c.entries[binary]
	if !ok || e.Schema == nil {
		return nil, false
	}
	if s, err := stamp(binary); err != nil || s != e.Stamp {
		return nil, false
	}
	return e.Schema, true
}

// Put remembers a binary's schema and writes the cache file, without the
// entries of binaries that are gone: every command reads the whole file,
// and binaries come and go (a provider upgraded to a new store path, a
// test's temporary directory), so it would grow without end.
func (c *SchemaCache) Put(binary string, schema *resource.ProviderSchema) error {
	if c == nil {
		return nil
	}
	s, err := stamp(binary)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	for b := range c.entries {
		if _, err := os.Stat(b); errors.Is(err, fs.ErrNotExist) {
			delete(c.entries, b)
		}
	}
	c.entries[binary] = cachedSchema{Stamp: s, Schema: schema}
	b, err := json.Marshal(c.entries)
	if err != nil {
		return fmt.Errorf("encode schema cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("schema cache %s: %w", c.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".schemas-*")
	if err != nil {
		return fmt.Errorf("schema cache %s: %w", c.path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("schema cache %s: %w", c.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("schema cache %s: %w", c.path, err)
	}
	return os.Rename(tmp.Name(), c.path)
}
