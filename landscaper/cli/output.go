package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

var outputSpec = spec{name: "output", args: "[MEMBER[.ATTR]]", max: 1, about: `Print outputs from the recorded state: every member's, one member's (MEMBER),
or one value (MEMBER.ATTR). Sensitive outputs show as (sensitive) unless
--show-sensitive is given. Nothing is evaluated and no provider is asked.`}

// outputValue is one output as --json prints it.
type outputValue struct {
	Sensitive bool `json:"sensitive"`
	Value     any  `json:"value"`
}

func runOutput(ctx context.Context, args []string, env Env) error {
	fs := outputSpec.flags()
	c := newCommon()
	c.sourceFlags(fs, "whose state to read; only used to find the state")
	c.stateFlag(fs, "to read")
	fs.BoolVar(&c.json, "json", false, "print the outputs as JSON: {MEMBER: {ATTR: {sensitive, value}}}, {ATTR: {sensitive, value}} for MEMBER, the value alone for MEMBER.ATTR")
	raw := fs.Bool("raw", false, "with MEMBER.ATTR: print a string (or a number or boolean) as it is, without quotes or a newline, for scripts")
	showSensitive := fs.Bool("show-sensitive", false, "print sensitive values in the clear")
	noColorFlag(fs, &env)
	positional, err := outputSpec.parse(fs, args, env)
	if err != nil {
		return err
	}
	if *raw && c.json {
		return &exitError{code: 2, err: errors.New("output: --raw and --json exclude each other")}
	}
	if *raw && len(positional) == 0 {
		return &exitError{code: 2, err: errors.New("output --raw needs MEMBER.ATTR: it prints one value")}
	}
	dir := "."
	if _, d, err := c.source(); err == nil {
		dir = d
	}
	backend := c.backend(env, dir)
	st, err := backend.Read(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if len(positional) == 0 {
		return printAllOutputs(env, st, *showSensitive, c.json)
	}
	member, attr, err := findOutput(st, positional[0], backend.Describe())
	if err != nil {
		return err
	}
	r := st.Resources[member]
	if attr == "" {
		outs := memberOutputs(r, *showSensitive)
		if c.json {
			return writeJSON(env, outs)
		}
		for _, name := range sortedKeys(outs) {
			fmt.Fprintf(env.Stdout, "%s = %s\n", name, showValue(outs[name]))
		}
		return nil
	}
	v := memberOutputs(r, *showSensitive)[attr]
	what := termsafe.Name(member) + "." + attr
	if v.Sensitive && !*showSensitive && (*raw || c.json) {
		return fmt.Errorf("output %s is sensitive; add --show-sensitive to print it", what)
	}
	switch {
	case *raw:
		text, err := rawValue(v.Value)
		if err != nil {
			return fmt.Errorf("output --raw %s: %w", what, err)
		}
		if env.IsTerminal {
			text = termsafe.Text(text)
		}
		_, err = fmt.Fprint(env.Stdout, text)
		return err
	case c.json:
		return writeJSON(env, v.Value)
	}
	fmt.Fprintln(env.Stdout, showValue(v))
	return nil
}

// findOutput splits MEMBER[.ATTR] by the recorded member names: the whole
// argument if it is a member, else a member and one output name after the
// last ".".
func findOutput(st *state.State, arg, where string) (member, attr string, err error) {
	if _, ok := st.Resources[arg]; ok {
		return arg, "", nil
	}
	i := strings.LastIndexByte(arg, '.')
	if i < 0 {
		return "", "", fmt.Errorf("no member %q in state %s", arg, where)
	}
	member, attr = arg[:i], arg[i+1:]
	r, ok := st.Resources[member]
	if !ok {
		return "", "", fmt.Errorf("no member %q (nor %q) in state %s", arg, member, where)
	}
	outs := memberOutputs(r, false)
	if _, ok := outs[attr]; !ok {
		names := sortedKeys(outs)
		has := "it has no outputs"
		if len(names) > 0 {
			has = "it has " + strings.Join(names, ", ")
		}
		return "", "", fmt.Errorf("member %q has no output %q (%s)", member, attr, has)
	}
	return member, attr, nil
}

// memberOutputs returns a record's outputs, masked unless show. An output
// is sensitive when any part of it is.
func memberOutputs(r *state.Resource, show bool) map[string]outputValue {
	out := map[string]outputValue{}
	var values map[string]json.RawMessage
	if len(r.Outputs) == 0 || json.Unmarshal(r.Outputs, &values) != nil {
		return out
	}
	for name, doc := range values {
		at := resource.AttrPath(name)
		sensitive := false
		for _, p := range r.SensitiveOutputs {
			if at.HasPrefix(p) || p.HasPrefix(at) {
				sensitive = true
			}
		}
		// Numbers stay as written: a large integer keeps its digits.
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			continue
		}
		if !show {
			v = maskAt(v, at, r.SensitiveOutputs)
		}
		out[name] = outputValue{Sensitive: sensitive, Value: v}
	}
	return out
}

func printAllOutputs(env Env, st *state.State, show, asJSON bool) error {
	names := sortedNames(st)
	if asJSON {
		all := make(map[string]map[string]outputValue, len(names))
		for _, n := range names {
			all[n] = memberOutputs(st.Resources[n], show)
		}
		return writeJSON(env, all)
	}
	for _, n := range names {
		outs := memberOutputs(st.Resources[n], show)
		for _, name := range sortedKeys(outs) {
			fmt.Fprintf(env.Stdout, "%s.%s = %s\n", termsafe.Name(n), name, showValue(outs[name]))
		}
	}
	return nil
}

// showValue shows a value for the terminal: JSON (indented when it spans
// lines), with characters that would act on a terminal escaped; a value
// masked whole is (sensitive), without quotes.
func showValue(v outputValue) string {
	if s, ok := v.Value.(string); ok && v.Sensitive && s == "(sensitive)" {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v.Value); err != nil {
		return "(" + err.Error() + ")"
	}
	return termsafe.Text(strings.TrimSuffix(b.String(), "\n"))
}

// rawValue is a value as --raw prints it: a string as it is, a number or a
// boolean as its JSON text; anything else is refused.
func rawValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return fmt.Sprint(x), nil
	case nil:
		return "", errors.New("the value is null; --raw prints strings, numbers and booleans")
	}
	return "", errors.New("the value is a list or an object; --raw prints strings, numbers and booleans (use --json)")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
