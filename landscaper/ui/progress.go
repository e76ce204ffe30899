package ui

import (
	"encoding/json"
	"fmt"
	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

func verbs(a resource.Action) (doing, done string) {
	switch a {
	case resource.ActionCreate:
		return "Creating", "Creation"
	case resource.ActionUpdate:
		return "Updating", "Update"
	case resource.ActionReplace:
		return "Replacing", "Replacement"
	case resource.ActionDelete:
		return "Destroying", "Destruction"
	}
	return "Working", "Work"
}

func roundDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// line renders an event as one line of text, without time or colour.
func line(ev engine.Event, st Style) string {
	// Names and messages come from the deployment and from providers:
	// nothing in them may act on the terminal.
	ev.Member, ev.Message = termsafe.Name(ev.Member), termsafe.Text(ev.Message)
	doing, done := verbs(ev.Action)
	switch ev.Kind {
	case engine.EventStarted:
		return fmt.Sprintf("%s: %s...", ev.Member, doing)
	case engine.EventDone:
		return st.Green(fmt.Sprintf("%s: %s complete after %s", ev.Member, done, roundDuration(ev.Elapsed)))
	case engine.EventFailed:
		return st.Red(fmt.Sprintf("%s: %s failed after %s: %s", ev.Member, done, roundDuration(ev.Elapsed), ev.Message))
	case engine.EventSkipped:
		return st.Yellow(fmt.Sprintf("%s: %s", ev.Member, ev.Message))
	case engine.EventLog:
		return st.Dim(fmt.Sprintf("%s: %s", ev.Member, ev.Message))
	case engine.EventWarning:
		return st.Yellow(fmt.Sprintf("%s: Warning: %s", ev.Member, ev.Message))
	case engine.EventProgress:
		if ev.Fraction >= 0 {
			return st.Dim(fmt.Sprintf("%s: %s (%.0f%%)", ev.Member, ev.Message, ev.Fraction*100))
		}
		return st.Dim(fmt.Sprintf("%s: %s", ev.Member, ev.Message))
	case engine.EventInfo:
		if ev.Member != `""` {
			return fmt.Sprintf("%s: %s", ev.Member, ev.Message)
		}
		return ev.Message
	}
	return ev.Message
}

// Plain writes one timestamped line per event, for logs and pipes.
type Plain struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPlain returns a Plain observer writing to w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

// Event writes the event.
func (p *Plain) Event(ev engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s\n", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), line(ev, Style{}))
}

// Terminal shows events as lines above a live status line that lists the
// members being worked on and for how long.
type Terminal struct {
	mu      sync.Mutex
	w       io.Writer
	st      Style
	running map[string]time.Time
	status  bool
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

// NewTerminal starts a terminal display; call Close when the run ends.
func NewTerminal(w io.Writer, st Style) *Terminal {
	t := &Terminal{w: w, st: st, running: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go t.tick()
	return t
}

func (t *Terminal) tick() {
	defer close(t.done)
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-ticker.C:
			t.mu.Lock()
			t.drawStatus()
			t.mu.Unlock()
		}
	}
}

func (t *Terminal) clearStatus() {
	if t.status {
		fmt.Fprint(t.w, "\r\x1b[2K")
		t.status = false
	}
}

func (t *Terminal) drawStatus() {
	t.clearStatus()
	if len(t.running) == 0 {
		return
	}
	names := make([]string, 0, len(t.running))
	for n := range t.running {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return t.running[names[i]].Before(t.running[names[j]]) })
	var parts []string
	for i, n := range names {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("+%d more", len(names)-4))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %ds", termsafe.Name(n), int(time.Since(t.running[n]).Seconds())))
	}
	fmt.Fprint(t.w, t.st.Dim(fmt.Sprintf("… %d running: %s", len(names), strings.Join(parts, ", "))))
	t.status = true
}

// Event prints the event above the status line.
func (t *Terminal) Event(ev engine.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Kind {
	case engine.EventStarted:
		t.running[ev.Member] = ev.Time
	case engine.EventDone, engine.EventFailed:
		delete(t.running, ev.Member)
	}
	t.clearStatus()
	fmt.Fprintln(t.w, line(ev, t.st))
}

// Close stops the status line; closing again does nothing.
func (t *Terminal) Close() {
	t.closing.Do(func() {
		close(t.stop)
		<-t.done
		t.mu.Lock()
		defer t.mu.Unlock()
		t.clearStatus()
	})
}

// JSON writes one JSON object per event.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSON returns a JSON observer writing to w.
func NewJSON(w io.Writer) *JSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSON{enc: enc}
}

type jsonEvent struct {
	engine.Event
	Action    string `json:"action,omitempty"`
	ElapsedMS int64  `json:"elapsed_ms,omitempty"`
}

// Event writes the event.
func (j *JSON) Event(ev engine.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := jsonEvent{Event: ev, ElapsedMS: ev.Elapsed.Milliseconds()}
	if ev.Action != resource.ActionUnspecified {
		out.Action = ev.Action.String()
	}
	_ = j.enc.Encode(out)
}

// Write writes any value as one JSON line (plans, summaries).
func (j *JSON) Write(v any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(v)
}

// PlanJSON is the machine form of a plan: actions and changed paths, no
// values.
type PlanJSON struct {
	Kind    string       `json:"kind"`
	Changes []ChangeJSON `json:"changes"`
	Add     int          `json:"add"`
	Change  int          `json:"change"`
	Destroy int          `json:"destroy"`
	Drift   []string     `json:"drift,omitempty"`
	// Undecided lists outputs that decide which other members exist.
	Undecided []string `json:"undecided,omitempty"`
	// Rollouts lists each rollout's batches in order.
	Rollouts []RolloutJSON `json:"rollouts,omitempty"`
	// RefreshOnly marks a plan of --refresh-only: Drift is all it holds.
	RefreshOnly bool `json:"refresh_only,omitempty"`
}

// RolloutJSON is one rollout of PlanJSON.
type RolloutJSON struct {
	Name        string     `json:"name"`
	Batches     [][]string `json:"batches"`
	MaxFailures int        `json:"max_failures"`
}

// ChangeJSON is one member of PlanJSON.
type ChangeJSON struct {
	Member   string   `json:"member"`
	Type     string   `json:"type"`
	Action   string   `json:"action"`
	Changed  []string `json:"changed,omitempty"`
	Replace  []string `json:"requires_replace,omitempty"`
	Deferred bool     `json:"deferred,omitempty"`
	WaitsFor []string `json:"waitsFor,omitempty"`
	// Before and After are the recorded and the planned inputs, with
	// sensitive values as "(sensitive)" and unknown ones as null; Unknown
	// lists the input paths known only after apply.
	Before  any      `json:"before,omitempty"`
	After   any      `json:"after,omitempty"`
	Unknown []string `json:"unknown,omitempty"`
	// UnknownOutputs are the outputs known only after apply.
	UnknownOutputs []string `json:"unknown_outputs,omitempty"`
	// Reason says why the member has this action.
	Reason string `json:"reason,omitempty"`
	// Details are the provider's account of the change: a summary line
	// and a JSON object whose shape the resource type defines.
	Details *DetailsJSON `json:"details,omitempty"`
}

// DetailsJSON is a change's details in PlanJSON.
type DetailsJSON struct {
	Summary string          `json:"summary,omitempty"`
	Lines   []string        `json:"lines,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// PlanToJSON converts a plan.
func PlanToJSON(p *engine.Plan) PlanJSON {
	out := PlanJSON{Kind: "plan", Drift: p.Drift, Undecided: p.Undecided, Changes: []ChangeJSON{}}
	out.Add, out.Change, out.Destroy = p.Counts()
	for _, r := range p.Rollouts {
		out.Rollouts = append(out.Rollouts, RolloutJSON{Name: r.Name, Batches: r.Batches, MaxFailures: r.MaxFailures})
	}
	for _, c := range p.Changes {
		cj := ChangeJSON{Member: c.Member, Type: c.Type, Action: c.Action.String(), Deferred: c.Deferred, WaitsFor: c.WaitsFor}
		for _, q := range c.Changed {
			cj.Changed = append(cj.Changed, q.String())
		}
		for _, q := range c.RequiresReplace {
			cj.Replace = append(cj.Replace, q.String())
		}
		if c.Prior != nil {
			cj.Before = maskedValue(c.Prior.Inputs, c.Prior.SensitiveInputs, nil)
		}
		if c.Action != resource.ActionDelete && (!c.Deferred || len(c.Unknown) > 0) {
			cj.After = maskedValue(c.Inputs, c.Sensitive, c.Unknown)
			for _, q := range c.Unknown {
				cj.Unknown = append(cj.Unknown, q.String())
			}
		}
		if c.Action != resource.ActionNoop && c.Action != resource.ActionDelete {
			cj.UnknownOutputs = c.UnknownOutputs
		}
		cj.Reason = reasonOf(c)
		if d := c.Details; d != nil {
			cj.Details = &DetailsJSON{Summary: d.Summary, Lines: d.Lines, Data: d.JSON}
		}
		out.Changes = append(out.Changes, cj)
	}
	return out
}

// maskedValue decodes a JSON document with the values at sensitive paths
// replaced by "(sensitive)" and those at unknown paths by null.
func maskedValue(doc json.RawMessage, sensitive, unknown []resource.Path) any {
	v, _ := engine.Masked(doc, sensitive, unknown, func(any) any { return sensitiveText })
	return v
}

// reasonOf says in words why a member has its planned action.
func reasonOf(c *engine.Change) string {
	paths := func(ps []resource.Path) string {
		names := make([]string, len(ps))
		for i, p := range ps {
			names[i] = p.String()
		}
		return strings.Join(names, ", ")
	}
	switch {
	case c.Deferred:
		why := "its inputs are computed from outputs known after apply"
		if len(c.WaitsFor) > 0 {
			why += ": " + strings.Join(c.WaitsFor, ", ")
		}
		if c.Action == resource.ActionReplace && len(c.RequiresReplace) > 0 {
			why += "; a change forces replacement: " + paths(c.RequiresReplace)
		}
		return why
	case c.Action == resource.ActionNoop:
		return ""
	case c.Action == resource.ActionCreate:
		if c.Prior != nil {
			return "its creation did not finish"
		}
		return "new in the deployment"
	case c.Action == resource.ActionDelete:
		return "no longer in the deployment"
	case c.Action == resource.ActionReplace && len(c.RequiresReplace) > 0:
		return "a change forces replacement: " + paths(c.RequiresReplace)
	case c.Action == resource.ActionReplace:
		if slices.Contains(c.Warnings, "replaced on request (--replace)") {
			return "replaced on request (--replace)"
		}
		if c.Prior != nil && c.Prior.Tainted {
			return "tainted: an earlier operation failed half way"
		}
		return "replaced"
	case len(c.Changed) > 0:
		return "inputs changed: " + paths(c.Changed)
	case len(c.Unknown) > 0:
		return "inputs known only after apply: " + paths(c.Unknown)
	}
	return "the resource differs from the recorded state"
}
