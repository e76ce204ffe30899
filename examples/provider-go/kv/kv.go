// Package kv is an example Landscaper provider written outside Landscaper
// with its SDK. Its one type, kv.entry, is a value kept under a key in a
// store: a directory with one file per key. It shows each part of the
// SDK: inputs and their Go types, validation with attribute paths, a plan
// hook that knows some outputs before apply, a sensitive input and a
// sensitive output, warnings, Read for drift, and Prepare.
package kv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// Inputs are the inputs of kv.entry. Each json name is a declared input:
// sdk.Provider.Check (run by sdk.Serve and sdktest.New) refuses a tag that
// matches none.
type Inputs struct {
	Store string `json:"store"`
	Key   string `json:"key"`
	Value string `json:"value"`
	// Secret is stored beside the value, readable by its owner only.
	Secret string `json:"secret"`
	// MaxBytes bounds the value; an Integer input, so 2.5 is refused at
	// inputs.maxBytes before the provider sees it.
	MaxBytes int `json:"maxBytes"`
}

// Outputs are the outputs of kv.entry.
type Outputs struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Revision counts the writes: 1 after create, one more per update.
	Revision int `json:"revision"`
	// Token is made at create and kept until the entry is replaced.
	Token string `json:"token"`
}

// Provider returns the kv provider.
func Provider() *sdk.Provider {
	return &sdk.Provider{
		Name:    "kv",
		Version: "0.1.0",
		Types:   map[string]sdk.Resource{"entry": entryType()},
	}
}

func entryType() *sdk.Type[Inputs, Outputs] {
	return &sdk.Type[Inputs, Outputs]{
		Description: "A value under a key in a store directory (one file per key).",
		Inputs: []sdk.Attr{
			sdk.String("store", "The store's directory; relative to the deployment's.").Required().ForceNew(),
			sdk.String("key", "The key: a file name in the store.").Required().ForceNew(),
			sdk.String("value", "The value.").Required(),
			sdk.String("secret", "A secret kept beside the value (mode 0600).").Sensitive().Default(""),
			sdk.Integer("maxBytes", "The longest value accepted.").Default(4096),
		},
		Outputs: []sdk.Attr{
			sdk.String("path", "The value's file."),
			sdk.String("sha256", "SHA-256 of the value, lowercase hex."),
			sdk.Integer("revision", "1 after create, one more after each update."),
			sdk.String("token", "A random token made at create, kept until the entry is replaced.").Sensitive(),
		},
		Validate: validate,
		Plan:     plan,
		Create: func(ctx context.Context, op *sdk.Op, in Inputs) (Outputs, error) {
			token, err := newToken()
			if err != nil {
				return Outputs{}, err
			}
			return write(ctx, op, in, Outputs{Revision: 1, Token: token})
		},
		Update: func(ctx context.Context, op *sdk.Op, prior sdk.State[Inputs, Outputs], in Inputs) (Outputs, error) {
			return write(ctx, op, in, Outputs{Revision: prior.Outputs.Revision + 1, Token: prior.Outputs.Token})
		},
		Delete: func(_ context.Context, op *sdk.Op, prior sdk.State[Inputs, Outputs]) error {
			path := entryPath(prior.Inputs)
			for _, name := range []string{path, path + ".secret"} {
				if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove %s: %w", name, err)
				}
			}
			op.Logf("removed %s", path)
			return nil
		},
		Read: func(_ context.Context, prior sdk.State[Inputs, Outputs]) (Outputs, bool, error) {
			b, err := os.ReadFile(entryPath(prior.Inputs))
			if errors.Is(err, fs.ErrNotExist) {
				return Outputs{}, false, nil
			}
			if err != nil {
				return Outputs{}, false, err
			}
			out := prior.Outputs
			out.SHA256 = hash(string(b))
			return out, true, nil
		},
		Prepare: func(_ context.Context, _ *sdk.State[Inputs, Outputs], in Inputs) error {
			// The cheap, harmless part: the store's directory.
			return os.MkdirAll(absStore(in.Store), 0o755)
		},
	}
}

// validate checks what the declared types do not. Inputs known only after
// apply are zero here and must not be judged.
func validate(in Inputs, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	known := func(name string) bool { return !resource.Covered(resource.AttrPath(name), unknown) }
	if known("key") && (in.Key == "" || strings.ContainsAny(in.Key, "/\x00") || strings.HasPrefix(in.Key, ".")) {
		diags = append(diags, resource.Error(resource.AttrPath("key"), "invalid key", "a key is a file name: not empty, no '/', not starting with '.'"))
	}
	if known("maxBytes") && in.MaxBytes < 1 {
		diags = append(diags, resource.Error(resource.AttrPath("maxBytes"), "invalid limit", "maxBytes must be at least 1"))
	}
	if known("value") && known("maxBytes") && len(in.Value) > in.MaxBytes {
		diags = append(diags, resource.Error(resource.AttrPath("value"), "value too long", "%d bytes, more than maxBytes (%d)", len(in.Value), in.MaxBytes))
	}
	return diags
}

// plan refines the plan the SDK made by comparing inputs: path and sha256
// are known before apply when their inputs are; revision and token are
// kept on a no-op; and a value changed behind Landscaper's back (Read
// refreshed the recorded sha256) makes a no-op an update.
func plan(_ context.Context, p *sdk.Plan[Inputs, Outputs]) {
	if !p.IsUnknown("store") && !p.IsUnknown("key") {
		p.SetKnown(Outputs{Path: entryPath(p.Desired)}, "path")
	}
	if p.IsUnknown("value") {
		return
	}
	want := hash(p.Desired.Value)
	p.SetKnown(Outputs{SHA256: want}, "sha256")
	if p.Prior != nil && p.Prior.HasOutputs && p.Prior.Outputs.SHA256 != want && p.Action == resource.ActionNoop {
		p.Action = resource.ActionUpdate
		p.Changed = append(p.Changed, resource.AttrPath("value"))
		p.SetUnknown("revision")
	}
	if p.Action == resource.ActionUpdate {
		// An update keeps the token.
		p.SetKnown(p.Prior.Outputs, "token")
	}
}

func write(ctx context.Context, op *sdk.Op, in Inputs, out Outputs) (Outputs, error) {
	if err := ctx.Err(); err != nil {
		return Outputs{}, err
	}
	path := entryPath(in)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Outputs{}, fmt.Errorf("store %s: %w", in.Store, err)
	}
	if err := os.WriteFile(path, []byte(in.Value), 0o644); err != nil {
		return Outputs{}, fmt.Errorf("write %s: %w", path, err)
	}
	if in.Secret != "" {
		if err := os.WriteFile(path+".secret", []byte(in.Secret), 0o600); err != nil {
			return Outputs{}, fmt.Errorf("write the secret of %s: %w", in.Key, err)
		}
	}
	if in.Value == "" {
		op.Warn(resource.AttrPath("value"), "empty value", "the entry %s is written, but holds nothing", in.Key)
	}
	op.Logf("wrote %s (%d bytes, revision %d)", path, len(in.Value), out.Revision)
	out.Path, out.SHA256 = path, hash(in.Value)
	return out, nil
}

// entryPath is the file of an entry: a relative store is relative to the
// provider's working directory, which the engine sets to the deployment's.
func entryPath(in Inputs) string {
	return filepath.Join(absStore(in.Store), in.Key)
}

func absStore(store string) string {
	if abs, err := filepath.Abs(store); err == nil {
		return abs
	}
	return store
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return "kvtok-" + hex.EncodeToString(b), nil
}
