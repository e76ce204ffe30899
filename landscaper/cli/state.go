package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

func runState(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("state needs a subcommand: list, show NAME, rm NAME, push URL|FILE or pull URL|FILE")}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("state "+sub, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var c common
	c.register(fs, false)
	showSensitive := false
	if sub == "show" {
		fs.BoolVar(&showSensitive, "show-sensitive", false, "print sensitive values (private keys) too")
	}
	positional, err := parse(fs, rest)
	if err != nil {
		return &exitError{code: 2, err: err}
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
		if len(positional) != 1 {
			return &exitError{code: 2, err: fmt.Errorf("state show needs one member name")}
		}
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
	case "rm":
		if len(positional) == 0 {
			return &exitError{code: 2, err: fmt.Errorf("state rm needs member names")}
		}
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
	case "push", "pull":
		// push copies the state to a place; pull copies it from a place. The
		// place is a postgres:// URL or a state file path.
		if len(positional) != 1 {
			return &exitError{code: 2, err: fmt.Errorf("state %s needs one argument: a postgres:// URL or a state file", sub)}
		}
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
	return &exitError{code: 2, err: fmt.Errorf("unknown state subcommand %q (list, show, rm, push, pull)", sub)}
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
