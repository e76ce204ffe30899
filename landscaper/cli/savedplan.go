package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/landscaper-nix/landscaper/internal/atomicfile"
	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/ui"
)

// maxSavedPlan bounds what `apply FILE` and `show FILE` read.
const maxSavedPlan = 256 << 20

// writeSavedPlan writes plan to path as `plan --out` does: a new file
// beside it, mode 0600, synced, then renamed over path.
func writeSavedPlan(path string, saved *engine.SavedPlan) error {
	b, err := json.MarshalIndent(saved, "", " ")
	if err != nil {
		return fmt.Errorf("encode the plan: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return nil
}

// readSavedPlan reads a plan that `plan --out` wrote.
func readSavedPlan(path string) (*engine.SavedPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the saved plan: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSavedPlan+1))
	if err != nil {
		return nil, fmt.Errorf("read the saved plan %s: %w", path, err)
	}
	if len(b) > maxSavedPlan {
		return nil, fmt.Errorf("the saved plan %s is larger than %d bytes", path, maxSavedPlan)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var saved engine.SavedPlan
	if err := dec.Decode(&saved); err != nil {
		return nil, fmt.Errorf("the saved plan %s: %w", path, err)
	}
	if saved.Format != engine.SavedPlanFormat {
		return nil, fmt.Errorf("%s is not a plan saved by this Landscaper (format %q, want %q)", path, saved.Format, engine.SavedPlanFormat)
	}
	return &saved, nil
}

var showSpec = spec{name: "show", args: "FILE", min: 1, max: 1, about: `Show a plan saved by "landscaper plan --out FILE": what "landscaper apply
FILE" would do. Sensitive values are not in the file; they show as
sensitive.`}

func runShow(_ context.Context, args []string, env Env) error {
	fs := showSpec.flags()
	asJSON := fs.Bool("json", false, "print the plan as one JSON object, as plan --json does")
	noColorFlag(fs, &env)
	detailsFlag(fs, &env)
	positional, err := showSpec.parse(fs, args, env)
	if err != nil {
		return err
	}
	saved, err := readSavedPlan(positional[0])
	if err != nil {
		return err
	}
	plan := saved.Plan()
	if *asJSON {
		out := ui.PlanToJSON(plan)
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	fmt.Fprintf(env.Stdout, "Saved plan of %s, made against state serial %d.\n\n", saved.Deployment, saved.Serial)
	ui.RenderPlan(env.Stdout, plan, style(env))
	return nil
}

// savedOptions checks that apply FILE was not given options the plan
// fixes itself, and takes them from the plan.
func savedOptions(c *common, mode *planMode, saved *engine.SavedPlan) error {
	if len(c.targets) > 0 || len(c.replace) > 0 || mode.destroy || mode.refreshOnly {
		return &exitError{code: 2, err: errors.New("a saved plan carries its own --target, --replace and --destroy: give none of them (nor --refresh-only) with it")}
	}
	c.targets, c.replace = saved.Options.Targets, saved.Options.Replace
	mode.destroy = saved.Options.Destroy
	return nil
}
