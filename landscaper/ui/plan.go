// Package ui renders plans and progress for people (a terminal, plain
// timestamped lines) and for machines (JSON events). Nothing it prints
// holds a sensitive value: those are shown as (sensitive).
package ui

import (
	"encoding/json"
	"fmt"
	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"io"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Style colours text for a terminal, or not at all.
type Style struct {
	Color bool
	// Details shows every line of what providers tell of each change
	// (plan --details), not only its summary line.
	Details bool
}

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Green, Yellow, Red and Bold colour text when colour is on.
func (s Style) Green(t string) string  { return s.paint("32", t) }
func (s Style) Yellow(t string) string { return s.paint("33", t) }
func (s Style) Red(t string) string    { return s.paint("31", t) }
func (s Style) Bold(t string) string   { return s.paint("1", t) }
func (s Style) Dim(t string) string    { return s.paint("2", t) }

const (
	sensitiveText = "(sensitive)"
	unknownText   = "(known after apply)"
)

// symbol returns Terraform's sign for an action.
func (s Style) symbol(a resource.Action) string {
	switch a {
	case resource.ActionCreate:
		return s.Green("  +")
	case resource.ActionUpdate:
		return s.Yellow("  ~")
	case resource.ActionReplace:
		return s.Red("-") + "/" + s.Green("+")
	case resource.ActionDelete:
		return s.Red("  -")
	}
	return "   "
}

// waitsFor names what a deferred change waits for: " (a.stdout, b.id)".
func waitsFor(c *engine.Change) string {
	if len(c.WaitsFor) == 0 {
		return ""
	}
	names := make([]string, len(c.WaitsFor))
	for i, w := range c.WaitsFor {
		names[i] = termsafe.Name(w)
	}
	return " (" + strings.Join(names, ", ") + ")"
}

func headline(c *engine.Change) string {
	id := termsafe.Name(c.Member) + " (" + c.Type + ")"
	switch c.Action {
	case resource.ActionCreate:
		if c.Deferred {
			return id + " will be created; its inputs are computed from outputs known after apply" + waitsFor(c)
		}
		return id + " will be created"
	case resource.ActionUpdate:
		if c.Deferred {
			return id + " may be updated; its inputs are computed from outputs known after apply" + waitsFor(c)
		}
		return id + " will be updated in place"
	case resource.ActionReplace:
		if c.Deferred {
			return id + " must be replaced; its inputs are computed from outputs known after apply" + waitsFor(c)
		}
		return id + " must be replaced"
	case resource.ActionDelete:
		return id + " will be destroyed"
	}
	return id
}

// RenderPlan writes a plan Terraform-style.
func RenderPlan(w io.Writer, plan *engine.Plan, st Style) {
	if len(plan.Drift) > 0 {
		fmt.Fprintln(w, st.Bold("Changed outside of Landscaper since the last apply:"))
		for _, d := range plan.Drift {
			fmt.Fprintf(w, "  - %s\n", termsafe.Text(d))
		}
		fmt.Fprintln(w)
	}
	if !plan.HasChanges() && plan.Decided() {
		fmt.Fprintln(w, st.Green("No changes.")+" The deployment matches the recorded state.")
		return
	}
	fmt.Fprintln(w, "Landscaper will perform the following actions:")
	for _, c := range plan.Changes {
		if c.Action == resource.ActionNoop {
			continue
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  %s\n", st.Bold("# "+headline(c)))
		fmt.Fprintf(w, "%s %s\n", st.symbol(c.Action), termsafe.Name(c.Member))
		for _, warning := range c.Warnings {
			fmt.Fprintf(w, "    %s %s\n", st.Yellow("warning:"), termsafe.Text(warning))
		}
		renderDetails(w, c, st)
		renderAttributes(w, c, st)
	}
	renderRollouts(w, plan, st)
	add, change, destroy := plan.Counts()
	fmt.Fprintf(w, "\n%s %d to add, %d to change, %d to destroy.\n", st.Bold("Plan:"), add, change, destroy)
	if !plan.Decided() {
		fmt.Fprintf(w, "Which other members exist depends on %s, known only after apply: the rest of the deployment is planned then, in the same apply.\n", termsafe.Text(strings.Join(plan.Undecided, ", ")))
	}
}

// renderDetails writes the provider's summary of a change, and its other
// lines when asked for.
func renderDetails(w io.Writer, c *engine.Change, st Style) {
	d := c.Details
	if d == nil {
		return
	}
	if d.Summary != "" {
		fmt.Fprintf(w, "    %s\n", termsafe.Text(d.Summary))
	}
	if !st.Details {
		if len(d.Lines) > 0 {
			fmt.Fprintf(w, "    %s\n", st.Dim(fmt.Sprintf("(%d more lines: --details)", len(d.Lines))))
		}
		return
	}
	for _, l := range d.Lines {
		fmt.Fprintf(w, "      %s\n", termsafe.Text(l))
	}
}

func renderAttributes(w io.Writer, c *engine.Change, st Style) {
	var desired, prior map[string]json.RawMessage
	_ = json.Unmarshal(c.Inputs, &desired)
	var priorSensitive []resource.Path
	if c.Prior != nil {
		_ = json.Unmarshal(c.Prior.Inputs, &prior)
		priorSensitive = c.Prior.SensitiveInputs
	}
	names := map[string]bool{}
	for n := range desired {
		names[n] = true
	}
	if c.Action == resource.ActionDelete {
		for n := range prior {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	width := 0
	for n := range names {
		sorted = append(sorted, n)
		width = max(width, len(n))
	}
	sort.Strings(sorted)
	replaces := map[string]bool{}
	for _, p := range c.RequiresReplace {
		if len(p) > 0 {
			replaces[p[0].Name] = true
		}
	}
	for _, n := range sorted {
		p := resource.AttrPath(n)
		newText := renderValue(desired[n], p, c.Sensitive, c.Unknown)
		pad := strings.Repeat(" ", width-len(n))
		switch c.Action {
		case resource.ActionCreate:
			fmt.Fprintf(w, "      %s %s%s = %s\n", st.Green("+"), n, pad, newText)
		case resource.ActionDelete:
			fmt.Fprintf(w, "      %s %s%s = %s\n", st.Red("-"), n, pad, renderValue(prior[n], p, priorSensitive, nil))
		default:
			old, had := prior[n]
			oldText := renderValue(old, p, priorSensitive, nil)
			sensitive := resource.Covered(p, c.Sensitive) || resource.Covered(p, priorSensitive)
			same := had && oldText == newText && !resource.Covered(p, c.Unknown)
			if had && same && !changed(c, p) {
				// A sensitive input is compared by the provider, which
				// lists it in Changed when it differs.
				continue
			}
			note := ""
			if replaces[n] {
				note = st.Red(" # forces replacement")
			}
			if !had {
				fmt.Fprintf(w, "      %s %s%s = %s%s\n", st.Green("+"), n, pad, newText, note)
				continue
			}
			if oldText == newText && sensitive && !resource.Covered(p, c.Unknown) {
				fmt.Fprintf(w, "      %s %s%s = %s (value changed)%s\n", st.Yellow("~"), n, pad, newText, note)
				continue
			}
			if oldText == newText && resource.Covered(p, c.Unknown) {
				// A sensitive input known only after apply.
				fmt.Fprintf(w, "      %s %s%s = %s -> %s%s\n", st.Yellow("~"), n, pad, oldText, unknownText, note)
				continue
			}
			if oldText == newText {
				// The input is the same; the resource changed outside.
				fmt.Fprintf(w, "      %s %s%s = %s (changed outside Landscaper)%s\n", st.Yellow("~"), n, pad, newText, note)
				continue
			}
			fmt.Fprintf(w, "      %s %s%s = %s -> %s%s\n", st.Yellow("~"), n, pad, oldText, newText, note)
		}
	}
	if c.Deferred && len(c.Unknown) == 0 {
		// Planned without its provider: no input is known.
		sign := st.Green("+")
		if c.Action != resource.ActionCreate {
			sign = st.Yellow("~")
		}
		fmt.Fprintf(w, "      %s inputs = %s\n", sign, unknownText)
	}
	if c.Action == resource.ActionCreate || c.Action == resource.ActionReplace {
		for _, o := range c.UnknownOutputs {
			fmt.Fprintf(w, "      %s outputs.%s = %s\n", st.Green("+"), o, unknownText)
		}
	}
}

func changed(c *engine.Change, p resource.Path) bool {
	for _, q := range c.Changed {
		if q.HasPrefix(p) || p.HasPrefix(q) {
			return true
		}
	}
	return false
}

// renderValue shows a JSON value; sensitive and unknown parts (by path)
// are replaced by markers.
func renderValue(v json.RawMessage, at resource.Path, sensitive, unknown []resource.Path) string {
	if resource.Covered(at, sensitive) {
		return sensitiveText
	}
	if resource.Covered(at, unknown) {
		return unknownText
	}
	if len(v) == 0 {
		return "null"
	}
	var decoded any
	if err := json.Unmarshal(v, &decoded); err != nil {
		return "(unreadable)"
	}
	return renderAny(decoded, at, sensitive, unknown)
}

func renderAny(v any, at resource.Path, sensitive, unknown []resource.Path) string {
	if resource.Covered(at, sensitive) {
		return sensitiveText
	}
	if resource.Covered(at, unknown) {
		return unknownText
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s = %s", quoteKey(k), renderAny(x[k], at.Attr(k), sensitive, unknown))
		}
		return "{ " + strings.Join(parts, "; ") + " }"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = renderAny(e, at.Index(i), sensitive, unknown)
		}
		return "[ " + strings.Join(parts, " ") + " ]"
	case nil:
		return "null"
	}
	return jsonText(v)
}

// jsonText writes a value as JSON without escaping <, > and &.
func jsonText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

func quoteKey(k string) string {
	p := resource.AttrPath(k).String()
	return p
}

// renderRollouts shows each rollout's batches in order, marking the members
// the plan changes.
func renderRollouts(w io.Writer, plan *engine.Plan, st Style) {
	changing := map[string]bool{}
	for _, c := range plan.Changes {
		if c.Action != resource.ActionNoop {
			changing[c.Member] = true
		}
	}
	for _, r := range plan.Rollouts {
		fmt.Fprintln(w)
		size := 0
		if len(r.Batches) > 0 {
			size = len(r.Batches[0])
		}
		fmt.Fprintf(w, "  %s\n", st.Bold(fmt.Sprintf("# rollout %s: %d batches of %d, one after the other; stops when more than %d of its members have failed", r.Name, len(r.Batches), size, r.MaxFailures)))
		for i, b := range r.Batches {
			var names []string
			for _, m := range b {
				if changing[m] {
					names = append(names, termsafe.Name(m))
				} else {
					names = append(names, termsafe.Name(m)+" (no change)")
				}
			}
			fmt.Fprintf(w, "    batch %d: %s\n", i+1, strings.Join(names, ", "))
		}
	}
}
