package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// SavedPlanFormat names the format of a saved plan.
const SavedPlanFormat = "landscaper-plan/1"

// SavedPlan is a plan as `landscaper plan --out FILE` writes it: what it
// was made against (the deployment, the options that shape a plan, the
// state's lineage and serial) and each change. Sensitive values are not in
// it: each is replaced by a salted SHA-256, which is enough to tell whether
// a value changed and reveals nothing of a key.
type SavedPlan struct {
	Format     string        `json:"format"`
	Deployment string        `json:"deployment"`
	Options    SavedOptions  `json:"options"`
	Lineage    string        `json:"lineage"`
	Serial     uint64        `json:"serial"`
	Salt       string        `json:"salt"`
	Undecided  []string      `json:"undecided,omitempty"`
	Waiting    int           `json:"waiting,omitempty"`
	Drift      []string      `json:"drift,omitempty"`
	Changes    []SavedChange `json:"changes"`
}

// SavedOptions are the options a plan depends on.
type SavedOptions struct {
	Targets []string `json:"targets,omitempty"`
	Replace []string `json:"replace,omitempty"`
	Destroy bool     `json:"destroy,omitempty"`
}

// SavedChange is one change of a saved plan.
type SavedChange struct {
	Member   string   `json:"member"`
	Type     string   `json:"type"`
	Provider string   `json:"provider"`
	Action   string   `json:"action"`
	Deferred bool     `json:"deferred,omitempty"`
	WaitsFor []string `json:"waits_for,omitempty"`
	// Inputs are the planned inputs: unknown values null, sensitive ones
	// {"sha256": ...}.
	Inputs    json.RawMessage `json:"inputs,omitempty"`
	Unknown   []string        `json:"unknown,omitempty"`
	Sensitive []string        `json:"sensitive,omitempty"`
	Changed   []string        `json:"changed,omitempty"`
	Replace   []string        `json:"requires_replace,omitempty"`
	// Prior holds the recorded inputs the change was planned against, in
	// the same form.
	Prior          json.RawMessage `json:"prior,omitempty"`
	PriorSensitive []string        `json:"prior_sensitive,omitempty"`
	UnknownOutputs []string        `json:"unknown_outputs,omitempty"`
	Warnings       []string        `json:"warnings,omitempty"`
	Deps           []string        `json:"deps,omitempty"`
	// Details are the provider's account of the change (never sensitive).
	Details *SavedDetails `json:"details,omitempty"`
}

// SavedDetails is a change's details in a saved plan.
type SavedDetails struct {
	Summary string          `json:"summary,omitempty"`
	Lines   []string        `json:"lines,omitempty"`
	JSON    json.RawMessage `json:"json,omitempty"`
}

// Save makes the saved form of plan, which this engine made.
func (e *Engine) Save(plan *Plan, destroy bool) (*SavedPlan, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("salt for the saved plan: %w", err)
	}
	s := &SavedPlan{
		Format: SavedPlanFormat, Deployment: e.deploymentID(),
		Options: SavedOptions{Targets: e.opts.Targets, Replace: e.opts.Replace, Destroy: destroy},
		Salt:    hex.EncodeToString(salt), Undecided: plan.Undecided, Waiting: plan.Waiting, Drift: plan.Drift,
	}
	if e.state != nil {
		s.Lineage, s.Serial = e.state.Lineage, e.state.Serial
	}
	for _, c := range plan.Changes {
		s.Changes = append(s.Changes, s.change(c))
	}
	return s, nil
}

func (s *SavedPlan) change(c *Change) SavedChange {
	sc := SavedChange{
		Member: c.Member, Type: c.Type, Provider: c.Provider, Action: c.Action.String(), Deferred: c.Deferred,
		WaitsFor: c.WaitsFor, Changed: pathStrings(c.Changed), Replace: pathStrings(c.RequiresReplace),
		UnknownOutputs: c.UnknownOutputs, Warnings: c.Warnings, Deps: c.Deps,
	}
	if d := c.Details; d != nil {
		sc.Details = &SavedDetails{Summary: d.Summary, Lines: d.Lines, JSON: d.JSON}
	}
	if c.Action != resource.ActionDelete && (!c.Deferred || len(c.Unknown) > 0) {
		sc.Inputs = s.hide(c.Inputs, c.Sensitive, c.Unknown)
		sc.Unknown, sc.Sensitive = pathStrings(c.Unknown), pathStrings(c.Sensitive)
	}
	if c.Prior != nil {
		sc.Prior = s.hide(c.Prior.Inputs, c.Prior.SensitiveInputs, nil)
		sc.PriorSensitive = pathStrings(c.Prior.SensitiveInputs)
	}
	if c.Action == resource.ActionNoop || c.Action == resource.ActionDelete {
		sc.UnknownOutputs = nil
	}
	return sc
}

func pathStrings(ps []resource.Path) []string {
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	sort.Strings(out)
	return out
}

// hide returns doc with the values at sensitive paths replaced by their
// salted hash and those at unknown paths by null.
func (s *SavedPlan) hide(doc json.RawMessage, sensitive, unknown []resource.Path) json.RawMessage {
	v, ok := Masked(doc, sensitive, unknown, func(v any) any {
		raw, _ := json.Marshal(v)
		sum := sha256.Sum256(append([]byte(s.Salt), raw...))
		return map[string]string{"sha256": hex.EncodeToString(sum[:])}
	})
	if !ok {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

// Masked decodes a JSON document with the values at unknown paths
// replaced by null and those at sensitive paths by what hide makes of
// them; ok is false when doc is empty or not JSON.
func Masked(doc json.RawMessage, sensitive, unknown []resource.Path, hide func(any) any) (any, bool) {
	if len(doc) == 0 {
		return nil, false
	}
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return nil, false
	}
	var walk func(v any, at resource.Path) any
	walk = func(v any, at resource.Path) any {
		if len(at) > 0 && resource.Covered(at, unknown) {
			return nil
		}
		if len(at) > 0 && resource.Covered(at, sensitive) {
			return hide(v)
		}
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = walk(e, at.Attr(k))
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e, at.Index(i))
			}
			return out
		}
		return v
	}
	return walk(v, nil), true
}

// deploymentID names the deployment wherever the command runs: the
// absolute path of its file, or its flake reference.
func (e *Engine) deploymentID() string {
	src := e.opts.Source
	if src.File != "" {
		if abs, err := filepath.Abs(src.File); err == nil {
			src.File = abs
		}
	}
	return src.String()
}

// ErrPlanStale is returned when a saved plan no longer describes what an
// apply would do.
var ErrPlanStale = errors.New("the saved plan is stale")

// CheckSaved compares a saved plan with the plan this engine made now, for
// the same deployment and options, against the same state: it returns an
// error wrapping ErrPlanStale, saying what differs, unless they are the
// same change for change.
func (e *Engine) CheckSaved(saved *SavedPlan, now *Plan, destroy bool) error {
	stale := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s; nothing was changed: make a new plan", ErrPlanStale, fmt.Sprintf(format, args...))
	}
	if saved.Format != SavedPlanFormat {
		return fmt.Errorf("not a saved plan of this Landscaper (format %q, want %q)", saved.Format, SavedPlanFormat)
	}
	if id := e.deploymentID(); saved.Deployment != id {
		return stale("it was made for the deployment %s, not %s", saved.Deployment, id)
	}
	if saved.Options.Destroy != destroy || !slices.Equal(saved.Options.Targets, e.opts.Targets) || !slices.Equal(saved.Options.Replace, e.opts.Replace) {
		return stale("it was made with other options (--destroy, --target, --replace)")
	}
	// Serial 0 is a state never stored: its lineage is made afresh by
	// every command, so a plan made without a state holds for an apply
	// that still finds none.
	neverStored := saved.Serial == 0 && e.state != nil && e.state.Serial == 0
	if e.state != nil && !neverStored && (saved.Lineage != e.state.Lineage || saved.Serial != e.state.Serial) {
		return stale("the state changed since (it was made at lineage %s serial %d, the state is at lineage %s serial %d)", saved.Lineage, saved.Serial, e.state.Lineage, e.state.Serial)
	}
	again := &SavedPlan{Salt: saved.Salt}
	byMember := map[string]SavedChange{}
	for _, c := range now.Changes {
		byMember[c.Member] = again.change(c)
	}
	if len(byMember) != len(saved.Changes) {
		return stale("it has %d changes, the deployment now gives %d", len(saved.Changes), len(byMember))
	}
	for _, was := range saved.Changes {
		is, ok := byMember[was.Member]
		if !ok {
			return stale("member %s is no longer planned", was.Member)
		}
		if d := differs(was, is); d != "" {
			return stale("member %s: %s", was.Member, d)
		}
	}
	if !slices.Equal(saved.Undecided, now.Undecided) {
		return stale("which members exist now depends on other outputs")
	}
	return nil
}

// differs says how two saved changes of one member differ, "" if not.
func differs(a, b SavedChange) string {
	switch {
	case a.Action != b.Action:
		return fmt.Sprintf("the plan said %s, now %s", a.Action, b.Action)
	case a.Deferred != b.Deferred:
		return "its inputs were known then and are not now, or the other way round"
	case !jsonSame(a.Inputs, b.Inputs):
		return "its planned inputs differ"
	case !slices.Equal(a.Unknown, b.Unknown):
		return "other inputs are known only after apply"
	case !jsonSame(a.Prior, b.Prior):
		return "its recorded inputs differ"
	}
	return ""
}

// Plan rebuilds a plan to show from a saved plan; sensitive values show as
// sensitive, and nothing in it can be applied.
func (s *SavedPlan) Plan() *Plan {
	p := &Plan{Undecided: s.Undecided, Waiting: s.Waiting, Drift: s.Drift}
	for _, sc := range s.Changes {
		c := &Change{
			Member: sc.Member, Type: sc.Type, Provider: sc.Provider, Action: parseAction(sc.Action), Deferred: sc.Deferred,
			WaitsFor: sc.WaitsFor, Inputs: sc.Inputs, Unknown: parsePaths(sc.Unknown), Sensitive: parsePaths(sc.Sensitive),
			Changed: parsePaths(sc.Changed), RequiresReplace: parsePaths(sc.Replace), UnknownOutputs: sc.UnknownOutputs,
			Warnings: sc.Warnings, Deps: sc.Deps,
		}
		if d := sc.Details; d != nil {
			c.Details = &resource.ChangeDetails{Summary: d.Summary, Lines: d.Lines, JSON: d.JSON}
		}
		if c.Inputs == nil {
			c.Inputs = json.RawMessage("{}")
		}
		if sc.Prior != nil {
			c.Prior = &state.Resource{Type: sc.Type, Provider: sc.Provider, Inputs: sc.Prior, SensitiveInputs: parsePaths(sc.PriorSensitive)}
		}
		p.Changes = append(p.Changes, c)
	}
	return p
}

func parseAction(s string) resource.Action {
	for _, a := range []resource.Action{resource.ActionNoop, resource.ActionCreate, resource.ActionUpdate, resource.ActionReplace, resource.ActionDelete} {
		if a.String() == s {
			return a
		}
	}
	return resource.ActionUnspecified
}

func parsePaths(ss []string) []resource.Path {
	var out []resource.Path
	for _, s := range ss {
		if p, err := resource.ParsePath(s); err == nil {
			out = append(out, p)
		} else {
			out = append(out, resource.AttrPath(strings.TrimPrefix(s, ".")))
		}
	}
	return out
}
