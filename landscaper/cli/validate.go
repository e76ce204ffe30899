package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/providerset"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

var (
	validateSpec = spec{name: "validate", max: 0, about: `Check the deployment: evaluate it and check every member's inputs against its
provider's schema and rules, and the references, cycles, claims and rollouts,
as plan does, without asking providers what exists (no refresh, no read) and
without contacting any target. The recorded state is only read, for the
outputs it knows, never locked or written, and interrupted operations are not
settled. Exit 0 with "The deployment is valid.", or 1 with what is wrong.`}
	graphSpec = spec{name: "graph", max: 0, about: `Print the members of the deployment and their dependencies, as evaluated
(and checked as validate does), as a Graphviz DOT graph on stdout. An edge
goes from a member to a member whose outputs it uses:
  landscaper graph | dot -Tsvg > graph.svg`}
)

// checkedPlan evaluates the deployment and has every member's inputs
// checked by its provider (a plan from the recorded outputs, without
// refreshing), through an engine that reads the state but never locks,
// settles or writes it.
func checkedPlan(ctx context.Context, c *common, env Env) (*engine.Plan, error) {
	src, dir, err := c.source()
	if err != nil {
		return nil, err
	}
	backend := c.backend(env, dir)
	// Evaluating a flake outside git copies it, a state inside it too,
	// into the world-readable store: refused as plan and apply refuse it.
	if err := checkFlakeCopy(c.flake, src, backend); err != nil {
		return nil, err
	}
	e, err := engine.Open(ctx, engine.Options{
		Source: src, Backend: readOnlyState{backend}, LockInfo: lockInfo(),
		NoRefresh: true, Builtins: providerset.Discover(), Logger: pluginLogger(env),
		SchemaCache: schemaCache(env), OperationTimeout: c.operationTimeout, CallTimeout: c.callTimeout,
		StartEarly: true,
	})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Plan(ctx)
}

// readOnlyState is a state backend for validate and graph: it reads the
// recorded state without the lock and without its interrupted operations
// (so that nothing asks a provider to settle them), and refuses writes.
type readOnlyState struct{ b state.Backend }

func (r readOnlyState) Lock(context.Context, state.LockInfo, time.Duration) (func() error, error) {
	return func() error { return nil }, nil
}

func (r readOnlyState) Read(ctx context.Context) (*state.State, error) {
	st, err := r.b.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	st = st.Clone()
	st.Pending = map[string]*state.Pending{}
	return st, nil
}

func (r readOnlyState) Write(context.Context, *state.State) error {
	return fmt.Errorf("state %s is only read here", r.b.Describe())
}

func (r readOnlyState) Describe() string { return r.b.Describe() }

// unchecked lists the members whose inputs the check could not see: those
// computed from outputs known only after apply.
func unchecked(plan *engine.Plan) []string {
	out := []string{}
	for _, ch := range plan.Changes {
		if ch.Deferred {
			out = append(out, ch.Member)
		}
	}
	return out
}

func runValidate(ctx context.Context, args []string, env Env) error {
	fs := validateSpec.flags()
	c := newCommon()
	c.sourceFlags(fs, "to check")
	c.stateFlag(fs, "whose recorded outputs to use (only read)")
	fs.BoolVar(&c.json, "json", false, `print the result as JSON: {"valid": true|false, "diagnostics": [...], ...}`)
	c.callTimeoutFlag(fs)
	c.traceFlag(fs)
	noColorFlag(fs, &env)
	if _, err := validateSpec.parse(fs, args, env); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	plan, err := checkedPlan(ctx, &c, env)
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	if err != nil {
		if c.json {
			if werr := writeJSON(env, map[string]any{"valid": false, "diagnostics": diagnostics(err)}); werr != nil {
				return werr
			}
			return &exitError{code: 1}
		}
		var msgs []string
		for _, d := range diagnostics(err) {
			msgs = append(msgs, d["message"])
		}
		return errors.New("the deployment is not valid:\n" + strings.Join(msgs, "\n"))
	}
	members := 0
	for _, ch := range plan.Changes {
		if ch.Action != resource.ActionDelete {
			members++
		}
	}
	later := unchecked(plan)
	if c.json {
		return writeJSON(env, map[string]any{
			"valid": true, "diagnostics": []any{}, "members": members,
			"unchecked": later, "waiting": plan.Waiting, "undecided": append([]string{}, plan.Undecided...),
		})
	}
	fmt.Fprintln(env.Stdout, style(env).Green("The deployment is valid."))
	if len(later) > 0 {
		names := make([]string, len(later))
		for i, n := range later {
			names[i] = termsafe.Name(n)
		}
		fmt.Fprintf(env.Stdout, "The inputs of %s are computed, in part or whole, from outputs known only after apply: those parts are checked when apply knows them.\n", strings.Join(names, ", "))
	}
	if plan.Waiting > 0 {
		fmt.Fprintf(env.Stdout, "Which members exist depends on outputs known only after apply (%s); %d member%s could not be checked yet.\n", strings.Join(plan.Undecided, ", "), plan.Waiting, plural(plan.Waiting))
	}
	return nil
}

// diagnostics splits an error into its diagnostics, sorted (members are
// checked in parallel): a line that begins with "member " or "dependency
// cycle" starts a new one; other lines continue the one before (a nix
// error spans lines).
func diagnostics(err error) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(err.Error(), "\n") {
		if len(out) == 0 || strings.HasPrefix(line, "member ") || strings.HasPrefix(line, "dependency cycle") {
			out = append(out, map[string]string{"severity": "error", "message": line})
			continue
		}
		out[len(out)-1]["message"] += "\n" + line
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["message"] < out[j]["message"] })
	return out
}

func runGraph(ctx context.Context, args []string, env Env) error {
	fs := graphSpec.flags()
	c := newCommon()
	c.sourceFlags(fs, "to draw")
	c.stateFlag(fs, "whose recorded outputs to use (only read)")
	c.callTimeoutFlag(fs)
	c.traceFlag(fs)
	noColorFlag(fs, &env)
	if _, err := graphSpec.parse(fs, args, env); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	plan, err := checkedPlan(ctx, &c, env)
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	if err != nil {
		return err
	}
	return writeDOT(env.Stdout, plan)
}

// writeDOT writes the plan's members (not the deletions of members the
// deployment no longer has) and their dependencies as a DOT digraph.
func writeDOT(w io.Writer, plan *engine.Plan) error {
	var b strings.Builder
	b.WriteString("digraph \"landscaper\" {\n")
	b.WriteString("  // The members of the deployment; an edge goes from a member to one whose outputs it uses.\n")
	if plan.Waiting > 0 {
		fmt.Fprintf(&b, "  // %d more member%s wait for outputs known only after apply: %s\n", plan.Waiting, plural(plan.Waiting), dotComment(strings.Join(plan.Undecided, ", ")))
	}
	b.WriteString("  rankdir = \"RL\";\n  node [shape = \"box\"];\n")
	for _, ch := range plan.Changes {
		if ch.Action == resource.ActionDelete {
			continue
		}
		attrs := "label = \"\\N\\n" + dotEscape(ch.Type) + "\""
		if ch.Deferred {
			attrs += ", style = \"dashed\""
		}
		fmt.Fprintf(&b, "  %s [%s];\n", dotQuote(ch.Member), attrs)
	}
	for _, ch := range plan.Changes {
		if ch.Action == resource.ActionDelete {
			continue
		}
		for _, d := range ch.Deps {
			fmt.Fprintf(&b, "  %s -> %s;\n", dotQuote(ch.Member), dotQuote(d))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote makes a DOT identifier of a name: a double-quoted string in
// which only the name's own characters appear, escaped so that nothing in
// it can end the string or act on a terminal.
func dotQuote(s string) string { return `"` + dotEscape(s) + `"` }

// dotEscape escapes a name for a DOT double-quoted string: a backslash is
// doubled (so a name ending in one cannot escape the closing quote, and a
// label shows it as one backslash), a quote is \", and a character that
// would not print as itself (a control character, a bidirectional
// override, a byte that is not UTF-8) is written as a Go escape (\x1b,
// \u202e).
func dotEscape(s string) string {
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// dotComment makes text safe for a // comment line.
func dotComment(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(termsafe.Text(s))
}
