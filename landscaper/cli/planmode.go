package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/ui"
)

// planMode is what plan and apply plan: the deployment (the default),
// what destroy would do (plan --destroy), or only what changed outside
// Landscaper (--refresh-only, as Terraform's -refresh-only).
type planMode struct {
	destroy     bool
	refreshOnly bool
}

// register adds --refresh-only, and --destroy for plan.
func (m *planMode) register(fs *flag.FlagSet, command string) {
	if command == "plan" {
		fs.BoolVar(&m.destroy, "destroy", false, "show what destroy would do (delete every recorded member, or the --target members and what depends on them), from the state alone")
	}
	fs.BoolVar(&m.refreshOnly, "refresh-only", false, "only ask the providers what exists and show what changed outside Landscaper (outputs changed, members gone); "+
		"apply --refresh-only records that in the state and creates, updates and deletes nothing")
}

// check refuses flags that do not go together.
func (m planMode) check(c *common) error {
	switch {
	case m.destroy && m.refreshOnly:
		return &exitError{code: 2, err: errors.New("--destroy and --refresh-only exclude each other")}
	case m.destroy && len(c.replace) > 0:
		return &exitError{code: 2, err: errors.New("--replace and --destroy exclude each other: destroy removes every member anyway")}
	case m.refreshOnly && len(c.replace) > 0:
		return &exitError{code: 2, err: errors.New("--replace and --refresh-only exclude each other: a refresh-only run changes nothing")}
	case m.refreshOnly && c.noRefresh:
		return &exitError{code: 2, err: errors.New("--refresh-only and --refresh=false exclude each other")}
	}
	return nil
}

// needsDeployment says whether the mode evaluates the deployment.
func (m planMode) needsDeployment() bool { return !m.destroy && !m.refreshOnly }

// plan makes the mode's plan.
func (m planMode) plan(ctx context.Context, e *engine.Engine) (*engine.Plan, error) {
	switch {
	case m.destroy:
		return e.PlanDestroy(ctx)
	case m.refreshOnly:
		return e.PlanRefreshOnly(ctx)
	}
	return e.Plan(ctx)
}

// render shows the plan.
func (m planMode) render(env Env, disp display, asJSON bool, e *engine.Engine, plan *engine.Plan) {
	switch {
	case asJSON:
		out := ui.PlanToJSON(plan)
		out.RefreshOnly = m.refreshOnly
		disp.json.Write(out)
	case m.refreshOnly:
		ui.RenderRefreshOnly(env.Stdout, plan, e.HasUnsaved(), style(env))
	default:
		ui.RenderPlan(env.Stdout, plan, style(env))
	}
}

// hasChanges says whether the plan would change anything (for
// --detailed-exitcode): for a refresh-only plan, whether there is
// anything to record.
func (m planMode) hasChanges(e *engine.Engine, plan *engine.Plan) bool {
	if m.refreshOnly {
		return len(plan.Drift) > 0 || e.HasUnsaved()
	}
	return plan.HasChanges()
}

// applyRefreshOnly records what a refresh-only plan found, after asking.
func applyRefreshOnly(ctx context.Context, e *engine.Engine, plan *engine.Plan, env Env, disp display, asJSON, autoApprove bool) error {
	if len(plan.Drift) == 0 && !e.HasUnsaved() {
		return nil
	}
	if !autoApprove {
		fmt.Fprintf(env.Stdout, "\nWould you like to update the state to record these changes? Only 'yes' will be accepted.\n  Enter a value: ")
		answer, _ := readLine(env.Stdin)
		if strings.TrimSpace(answer) != "yes" {
			return &exitError{code: 1, err: errors.New("apply cancelled")}
		}
	}
	start := time.Now()
	sum, err := e.SaveRefresh(ctx)
	disp.close()
	if asJSON {
		disp.json.Write(map[string]any{
			"kind": "summary", "created": 0, "updated": 0, "replaced": 0, "deleted": 0,
			"refreshed": len(sum.Changed), "forgotten": len(sum.Forgotten), "settled": len(sum.Settled),
			"elapsed_ms": time.Since(start).Milliseconds(),
		})
	} else if err == nil {
		ui.RenderRefreshSummary(env.Stdout, sum, style(env))
	}
	return err
}
