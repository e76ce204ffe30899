package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// stateGroup is "landscaper state" and its subcommands.
var stateGroup = group{name: "state", about: "Read, edit and move the recorded state; the resources themselves are not touched.", subs: []spec{
	{name: "state list", short: "list the recorded members and interrupted operations", max: 0, about: "List the members the state records, with their types, and interrupted operations."},
	{name: "state show", short: "print one member's record as JSON", args: "MEMBER", min: 1, max: 1, about: "Print what the state records of one member, as JSON; sensitive values show as\n(sensitive) unless --show-sensitive is given."},
	{name: "state mv", short: "rename a member in the state", args: "OLD NEW", min: 2, max: 2, about: `Rename a member in the state, so that after renaming it in the deployment
too the next plan keeps it instead of replacing it. The other members'
dependencies on OLD follow. Refused, changing nothing, when OLD is not
recorded or has an interrupted operation, when NEW is recorded already, or
when NEW is not a member name (names joined by ".", none empty, without "#"
or line breaks).`},
	{name: "state rm", short: "forget members, without deleting them", args: "MEMBER...", min: 1, max: -1, about: "Forget members: remove them from the state without deleting them."},
	{name: "state push", short: "copy the state to PLACE", args: "PLACE", min: 1, max: 1, about: "Copy the deployment's state to PLACE, a postgres:// URL or a state file."},
	{name: "state pull", short: "replace the state with a copy of the one at PLACE", args: "PLACE", min: 1, max: 1, about: "Copy the state at PLACE, a postgres:// URL or a state file, to the deployment's\nstate."},
}}

func runState(ctx context.Context, args []string, env Env) error {
	sp, rest, err := stateGroup.dispatch(args, env)
	if err != nil {
		return err
	}
	sub := strings.TrimPrefix(sp.name, "state ")
	fs := sp.flags()
	c := newCommon()
	c.sourceFlags(fs, "whose state to use; only used to find the state")
	showSensitive := false
	switch sub {
	case "list":
		c.stateFlag(fs, "to list")
		fs.BoolVar(&c.json, "json", false, "print the list as JSON")
	case "show":
		c.stateFlag(fs, "to read")
		fs.BoolVar(&showSensitive, "show-sensitive", false, "print sensitive values (private keys) too")
	case "mv", "rm":
		c.stateFlag(fs, "to edit")
		c.lockFlag(fs)
	case "push":
		c.stateFlag(fs, "to copy")
		c.lockFlag(fs)
	case "pull":
		c.stateFlag(fs, "to replace with the copy")
		c.lockFlag(fs)
	}
	noColorFlag(fs, &env)
	positional, err := sp.parse(fs, rest, env)
	if err != nil {
		return err
	}
	dir := "."
	if _, d, err := c.source(); err == nil {
		dir = d
	}
	backend := c.backend(env, dir)
	switch sub {
	case "list":
		st, err := backend.Read(ctx)
		if err != nil {
			return err
		}
		names := sortedNames(st)
		if c.json {
			out := make([]map[string]string, 0, len(names))
			for _, n := range names {
				out = append(out, map[string]string{"member": n, "type": st.Resources[n].Type})
			}
			return writeJSON(env, out)
		}
		for _, n := range names {
			fmt.Fprintf(env.Stdout, "%s\t%s\n", termsafe.Name(n), st.Resources[n].Type)
		}
		for n, p := range st.Pending {
			fmt.Fprintf(env.Stdout, "%s\t%s\t(interrupted %s; the next plan or apply settles it)\n", termsafe.Name(n), p.Type, p.Operation)
		}
		return nil
	case "show":
		st, err := backend.Read(ctx)
		if err != nil {
			return err
		}
		r, ok := st.Resources[positional[0]]
		if !ok {
			return fmt.Errorf("no member %q in state %s", positional[0], backend.Describe())
		}
		view := map[string]any{
			"member": positional[0], "type": r.Type, "provider": r.Provider,
			"inputs":       masked(r.Inputs, r.SensitiveInputs, showSensitive),
			"outputs":      masked(r.Outputs, r.SensitiveOutputs, showSensitive),
			"dependencies": r.Dependencies,
		}
		if r.Tainted {
			view["tainted"] = true
		}
		return writeJSON(env, view)
	case "mv":
		return moveMember(ctx, backend, c.lockTimeout, positional[0], positional[1], env)
	case "rm":
		unlock, err := backend.Lock(ctx, lockInfo(), c.lockTimeout)
		if err != nil {
			return fmt.Errorf("lock state: %w", err)
		}
		defer unlock()
		st, err := backend.Read(ctx)
		if err != nil {
			return err
		}
		for _, n := range positional {
			if _, ok := st.Resources[n]; !ok {
				return fmt.Errorf("no member %q in state %s; nothing removed", n, backend.Describe())
			}
		}
		for _, n := range positional {
			delete(st.Resources, n)
			delete(st.Pending, n)
		}
		if err := backend.Write(ctx, st); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Removed %s from the state; the resources themselves were not touched.\n", strings.Join(positional, ", "))
		return nil
	default: // push, pull
		// push copies the state to a place; pull copies it from a place. The
		// place is a postgres:// URL or a state file path.
		other := openBackend(positional[0])
		from, to := backend, other
		if sub == "pull" {
			from, to = other, backend
		}
		copied, err := state.Copy(ctx, from, to, lockInfo(), c.lockTimeout)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Copied the state (%d members, lineage %s) from %s to %s.\n", len(copied.Resources), copied.Lineage, from.Describe(), to.Describe())
		return nil
	}
}

// moveMember renames the member from to the name to in the state, under
// the state lock, and makes the other records' dependencies on from name
// to. It refuses, writing nothing, when from is not recorded or has an
// interrupted operation, when to is recorded (or pending) already, or when
// to is not a member name.
func moveMember(ctx context.Context, backend state.Backend, lockTimeout time.Duration, from, to string, env Env) error {
	if err := checkMemberName(to); err != nil {
		return fmt.Errorf("state mv: %w; nothing moved", err)
	}
	if from == to {
		return fmt.Errorf("state mv: %q and %q are the same name; nothing moved", from, to)
	}
	unlock, err := backend.Lock(ctx, lockInfo(), lockTimeout)
	if err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	defer unlock()
	st, err := backend.Read(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if p, ok := st.Pending[from]; ok {
		return fmt.Errorf("state mv: member %q has an interrupted %s; run plan or apply to settle it first; nothing moved", from, p.Operation)
	}
	r, ok := st.Resources[from]
	if !ok {
		return fmt.Errorf("state mv: no member %q in state %s; nothing moved", from, backend.Describe())
	}
	if _, ok := st.Resources[to]; ok {
		return fmt.Errorf("state mv: member %q exists in state %s already; nothing moved", to, backend.Describe())
	}
	if p, ok := st.Pending[to]; ok {
		return fmt.Errorf("state mv: member %q has an interrupted %s in state %s; nothing moved", to, p.Operation, backend.Describe())
	}
	delete(st.Resources, from)
	st.Resources[to] = r
	var dependents []string
	for name, rec := range st.Resources {
		if !slices.Contains(rec.Dependencies, from) {
			continue
		}
		deps := make([]string, 0, len(rec.Dependencies))
		for _, d := range rec.Dependencies {
			if d == from {
				d = to
			}
			if !slices.Contains(deps, d) {
				deps = append(deps, d)
			}
		}
		sort.Strings(deps)
		rec.Dependencies = deps
		dependents = append(dependents, name)
	}
	if err := backend.Write(ctx, st); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	fmt.Fprintf(env.Stdout, "Moved %s to %s in the state; the resource itself was not touched.\n", termsafe.Name(from), termsafe.Name(to))
	if len(dependents) > 0 {
		sort.Strings(dependents)
		for i, d := range dependents {
			dependents[i] = termsafe.Name(d)
		}
		fmt.Fprintf(env.Stdout, "The dependencies of %s now name %s.\n", strings.Join(dependents, ", "), termsafe.Name(to))
	}
	fmt.Fprintf(env.Stdout, "Name it %s in the deployment too, if it is not already: otherwise the next apply deletes %s and creates %s anew.\n", termsafe.Name(to), termsafe.Name(to), termsafe.Name(from))
	return nil
}

// checkMemberName checks a member path as the evaluation driver allows it:
// names joined by ".", none empty, none holding "#" or a line break.
func checkMemberName(path string) error {
	for _, n := range strings.Split(path, ".") {
		switch {
		case n == "":
			return fmt.Errorf("%q is not a member name: it holds an empty name (nested members are named a.b)", path)
		case strings.Contains(n, "#"):
			return fmt.Errorf("%q is not a member name: it holds '#', which Landscaper keeps for output references", path)
		case strings.ContainsAny(n, "\n"):
			return fmt.Errorf("%q is not a member name: it holds a line break", path)
		}
	}
	return nil
}

func sortedNames(st *state.State) []string {
	names := make([]string, 0, len(st.Resources))
	for n := range st.Resources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// masked decodes a JSON document, replacing sensitive parts.
func masked(doc json.RawMessage, sensitive []resource.Path, show bool) any {
	var v any
	if len(doc) == 0 || json.Unmarshal(doc, &v) != nil {
		return nil
	}
	if show {
		return v
	}
	return maskAt(v, nil, sensitive)
}

func maskAt(v any, at resource.Path, sensitive []resource.Path) any {
	if len(at) > 0 && resource.Covered(at, sensitive) {
		return "(sensitive)"
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = maskAt(e, at.Attr(k), sensitive)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskAt(e, at.Index(i), sensitive)
		}
		return out
	}
	return v
}

func writeJSON(env Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
