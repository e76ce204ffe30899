// Package testprovider is "testkit", a provider for crash-safety tests of
// the engine. Its one type, testkit.item, is a tiny file (like local.file)
// whose create can be told to misbehave: panic, kill its own process, hang
// until cancelled, hang ignoring cancellation, or take its time; whose plan
// can hang or kill its process, and whose read can hang. The whole provider
// can be told, through the environment (StartEnv), to misbehave while it
// starts.
package testprovider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/proto/plugin"
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
	// BehaviourStuck blocks create and update for good, ignoring
	// cancellation, as a provider stuck in a system call does.
	BehaviourStuck = "stuck"
	// BehaviourHangPlan makes plan write Marker(path, "planning") and
	// block until cancelled. Create and update behave as "ok".
	BehaviourHangPlan = "hangPlan"
	// BehaviourExitPlan makes plan write DyingWords to stderr and exit the
	// provider process with ExitCode.
	BehaviourExitPlan = "exitPlan"
	// BehaviourHangRead makes read write Marker(path, "reading") and block
	// until cancelled. Create and update behave as "ok".
	BehaviourHangRead = "hangRead"
)

// behaviours lists every behaviour, for validation.
var behaviours = []string{BehaviourOK, BehaviourPanic, BehaviourExit, BehaviourHang, BehaviourSlow, BehaviourStuck, BehaviourHangPlan, BehaviourExitPlan, BehaviourHangRead}

// Marker is the file a hanging plan or read of the item at path writes
// when it starts hanging, so that a test knows the call is in progress:
// what is "planning" or "reading".
func Marker(path, what string) string { return path + "." + what }

// DyingMessage is the last line an "exit" or "exitPlan" item writes to
// stderr; DyingWords are all the lines it writes.
const DyingMessage = "dying now"

// DyingWords are the lines a dying item writes to stderr, DyingMessage
// last.
var DyingWords = []string{"testkit: told to exit, so exiting", DyingMessage}

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
			sdk.String("behaviour", `How the item misbehaves: "ok", "panic", "exit", "hang", "slow", "stuck", "hangPlan", "exitPlan" or "hangRead".`).Default(BehaviourOK),
			sdk.Number("delayMs", `How long a "slow" item sleeps before writing, in milliseconds.`).Default(0),
		},
		Outputs: []sdk.Attr{
			sdk.String("id", "The item's id: \"testkit:\" followed by its path."),
		},
		Validate: validate,
		Plan:     plan,
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
		Read: func(ctx context.Context, prior sdk.State[Inputs, Outputs]) (Outputs, bool, error) {
			if prior.Inputs.Path == "" {
				return Outputs{}, false, nil
			}
			if prior.Inputs.Behaviour == BehaviourHangRead {
				if err := hang(ctx, Marker(prior.Inputs.Path, "reading")); err != nil {
					return Outputs{}, false, fmt.Errorf("read item %s: %w", prior.Inputs.Path, err)
				}
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
		if !slices.Contains(behaviours, in.Behaviour) {
			diags = append(diags, resource.Error(p, "unknown behaviour", "%q is not one of %s", in.Behaviour, strings.Join(behaviours, ", ")))
		}
	}
	if p := resource.AttrPath("delayMs"); !resource.Covered(p, unknown) && in.DelayMs < 0 {
		diags = append(diags, resource.Error(p, "negative delay", "delayMs must be 0 or more"))
	}
	return diags
}

// plan carries out the plan behaviours.
func plan(ctx context.Context, p *sdk.Plan[Inputs, Outputs]) {
	if p.IsUnknown("behaviour") || p.IsUnknown("path") {
		return
	}
	switch p.Desired.Behaviour {
	case BehaviourHangPlan:
		if err := hang(ctx, Marker(p.Desired.Path, "planning")); err != nil {
			p.Diagnostics = append(p.Diagnostics, resource.Error(nil, "plan cancelled", "%v", err))
		}
	case BehaviourExitPlan:
		die()
	}
}

// hang writes the marker file and blocks until ctx is done.
func hang(ctx context.Context, marker string) error {
	if err := writeAtomic(marker, nil); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// die writes DyingWords to stderr and exits, as a provider that dies with
// log.Fatal: the log package writes to the process's real stderr, which the
// engine keeps the tail of.
func die() {
	for _, w := range DyingWords {
		log.Print(w)
	}
	os.Exit(ExitCode)
}

// write carries out the item's behaviour and, unless that stops it, writes
// the file.
func write(ctx context.Context, op *sdk.Op, in Inputs) (Outputs, error) {
	switch in.Behaviour {
	case BehaviourPanic:
		panic(fmt.Sprintf("testkit: item %s was told to panic", in.Path))
	case BehaviourExit:
		die()
	case BehaviourStuck:
		op.Logf("stuck for good, ignoring cancellation")
		for {
			time.Sleep(time.Hour)
		}
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

// StartEnv, in the provider's environment, makes it misbehave while it
// starts, as one of the Start values says.
const StartEnv = "LANDSCAPER_TESTKIT_START"

// How the provider can misbehave while it starts.
const (
	// StartHang never completes the plugin handshake.
	StartHang = "hang"
	// StartExit writes DyingWords to stderr and exits with ExitCode
	// before the handshake.
	StartExit = "exit"
	// StartHangSchema completes the handshake, then never answers
	// GetSchema (until the call is cancelled).
	StartHangSchema = "hangSchema"
)

// Serve serves the testkit provider, misbehaving while it starts if
// StartEnv says so. Call it from main.
func Serve() {
	switch os.Getenv(StartEnv) {
	case StartHang:
		for {
			time.Sleep(time.Hour)
		}
	case StartExit:
		die()
	case StartHangSchema:
		plugin.Serve(schemaHang{Provider()})
	}
	sdk.Serve(Provider())
}

// schemaHang is the testkit provider with a GetSchema that never answers.
type schemaHang struct{ *sdk.Provider }

// GetSchema blocks until the call is cancelled.
func (schemaHang) GetSchema(ctx context.Context) (*resource.ProviderSchema, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
