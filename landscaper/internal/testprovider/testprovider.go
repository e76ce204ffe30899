// Package testprovider is "testkit", a provider for crash-safety tests of
// the engine. Its one type, testkit.item, is a tiny file (like local.file)
// whose create can be told to misbehave: panic, kill its own process, hang
// until cancelled, or take its time.
package testprovider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// Version is the provider's version, reported in its schema.
const Version = "0.0.1-test"

// Behaviours an item's create (and update) can have.
const (
	// BehaviourOK writes the file at once.
	BehaviourOK = "ok"
	// BehaviourPanic panics inside Create, before writing anything.
	BehaviourPanic = "panic"
	// BehaviourExit writes DyingMessage to stderr and exits the provider
	// process with status 2, before writing anything.
	BehaviourExit = "exit"
	// BehaviourHang blocks until the operation's context is cancelled and
	// writes nothing.
	BehaviourHang = "hang"
	// BehaviourSlow sleeps delayMs (or until cancelled), then writes the
	// file.
	BehaviourSlow = "slow"
)

// DyingMessage is the last line an "exit" item writes to stderr.
const DyingMessage = "dying now"

// ExitCode is the status an "exit" item ends its process with.
const ExitCode = 2

// Inputs are the inputs of testkit.item.
type Inputs struct {
	Path      string  `json:"path"`
	Behaviour string  `json:"behaviour"`
	DelayMs   float64 `json:"delayMs"`
}

// Outputs are the outputs of testkit.item.
type Outputs struct {
	ID string `json:"id"`
}

// ID is the id an item at path reports.
func ID(path string) string { return "testkit:" + path }

// Provider returns the testkit provider.
func Provider() *sdk.Provider {
	return &sdk.Provider{
		Name:    "testkit",
		Version: Version,
		Types:   map[string]sdk.Resource{"item": itemType()},
	}
}

func itemType() *sdk.Type[Inputs, Outputs] {
	return &sdk.Type[Inputs, Outputs]{
		Description: "A file holding its own path, whose create can misbehave on purpose (for tests).",
		Inputs: []sdk.Attr{
			sdk.String("path", "The file to create; its contents are this path. A change replaces the item.").Required().ForceNew(),
			sdk.String("behaviour", `How create and update behave: "ok", "panic", "exit", "hang" or "slow".`).Default(BehaviourOK),
			sdk.Number("delayMs", `How long a "slow" item sleeps before writing, in milliseconds.`).Default(0),
		},
		Outputs: []sdk.Attr{
			sdk.String("id", "The item's id: \"testkit:\" followed by its path."),
		},
		Validate: validate,
		Create: func(ctx context.Context, op *sdk.Op, in Inputs) (Outputs, error) {
			return write(ctx, op, in)
		},
		Update: func(ctx context.Context, op *sdk.Op, _ sdk.State[Inputs, Outputs], in Inputs) (Outputs, error) {
			return write(ctx, op, in)
		},
		Delete: func(_ context.Context, op *sdk.Op, prior sdk.State[Inputs, Outputs]) error {
			if prior.Inputs.Path == "" {
				return nil
			}
			_ = os.Remove(tempName(prior.Inputs.Path))
			err := os.Remove(prior.Inputs.Path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err == nil {
				op.Logf("deleted %s", prior.Inputs.Path)
			}
			return err
		},
		Read: func(_ context.Context, prior sdk.State[Inputs, Outputs]) (Outputs, bool, error) {
			if prior.Inputs.Path == "" {
				return Outputs{}, false, nil
			}
			_, err := os.Stat(prior.Inputs.Path)
			if errors.Is(err, fs.ErrNotExist) {
				return Outputs{}, false, nil
			}
			if err != nil {
				return Outputs{}, false, err
			}
			return Outputs{ID: ID(prior.Inputs.Path)}, true, nil
		},
	}
}

func validate(in Inputs, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	if p := resource.AttrPath("path"); !resource.Covered(p, unknown) && in.Path == "" {
		diags = append(diags, resource.Error(p, "empty path", "path must name a file"))
	}
	if p := resource.AttrPath("behaviour"); !resource.Covered(p, unknown) {
		switch in.Behaviour {
		case BehaviourOK, BehaviourPanic, BehaviourExit, BehaviourHang, BehaviourSlow:
		default:
			diags = append(diags, resource.Error(p, "unknown behaviour", "%q is not one of ok, panic, exit, hang, slow", in.Behaviour))
		}
	}
	if p := resource.AttrPath("delayMs"); !resource.Covered(p, unknown) && in.DelayMs < 0 {
		diags = append(diags, resource.Error(p, "negative delay", "delayMs must be 0 or more"))
	}
	return diags
}

// write carries out the item's behaviour and, unless that stops it, writes
// the file.
func write(ctx context.Context, op *sdk.Op, in Inputs) (Outputs, error) {
	switch in.Behaviour {
	case BehaviourPanic:
		panic(fmt.Sprintf("testkit: item %s was told to panic", in.Path))
	case BehaviourExit:
		// As a provider that dies with log.Fatal: the log package writes
		// to the process's real stderr, which the engine keeps the tail of.
		log.Print(DyingMessage)
		os.Exit(ExitCode)
	case BehaviourHang:
		op.Logf("hanging until cancelled")
		<-ctx.Done()
		return Outputs{}, fmt.Errorf("item %s: %w", in.Path, ctx.Err())
	case BehaviourSlow:
		t := time.NewTimer(time.Duration(in.DelayMs * float64(time.Millisecond)))
		select {
		case <-ctx.Done():
			t.Stop()
			return Outputs{}, fmt.Errorf("item %s: %w", in.Path, ctx.Err())
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return Outputs{}, fmt.Errorf("item %s: %w", in.Path, err)
	}
	if err := writeAtomic(in.Path, []byte(in.Path)); err != nil {
		return Outputs{}, err
	}
	op.Logf("wrote %s", in.Path)
	return Outputs{ID: ID(in.Path)}, nil
}

// tempName is the temporary file a write of path goes through. It is the
// same for every write, so one left behind by a killed write is reused by
// the next and removed by Delete.
func tempName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".testkit-tmp")
}

// writeAtomic writes the temporary file of path and renames it over path.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of %s: %w", path, err)
	}
	tmp := tempName(path)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return nil
}
