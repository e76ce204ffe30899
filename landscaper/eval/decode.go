package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// The driver's output (driver.nix) is checked as it is decoded: the engine
// keys members by path and outputs by "<path>#<output>", builds the context
// into nix-store arguments and addresses inputs by the failing paths, so
// anything the driver did not mean to say is refused here rather than
// silently merged, dropped or misread later.

// membersOutput is the driver's output in "members" mode.
type membersOutput struct {
	A []memberParts `json:"a"`
	B []pathInputs  `json:"b"`
	C []pathFailing `json:"c"`
	K []pathInputs  `json:"k"`
	// Computing lists the members of "c" with failing parts that "b" left
	// out (see Result.Computing).
	Computing []string `json:"computing"`
}

// memberParts is a member of the "a" list; with Parts, its inputs are the
// list of the values of its failing parts (see splice).
type memberParts struct {
	Member
	Parts bool `json:"parts"`
}

type pathInputs struct {
	Path   string `json:"path"`
	Inputs string `json:"inputs"`
	Parts  bool   `json:"parts"`
}

// pathFailing is a member of the evaluation with throwing outputs; one
// whose inputs touch no output is settled there, with its type, inputs and
// string context.
type pathFailing struct {
	Path    string                  `json:"path"`
	Failing [][]json.RawMessage     `json:"failing"`
	Type    string                  `json:"type"`
	Inputs  *string                 `json:"inputs"`
	Context map[string]ContextEntry `json:"context"`
	// Masked is the inputs with the failing parts null, of a member that
	// uses outputs in some parts only; the other evaluations give only
	// those parts.
	Masked        *string                 `json:"masked"`
	MaskedContext map[string]ContextEntry `json:"maskedContext"`
}

// decodeStrict decodes one JSON document into v: no unknown fields, nothing
// after the document.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("no JSON document")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more data after the JSON document")
	}
	return nil
}

// checkMemberPath checks a member path as the driver writes it: names
// joined by ".", none empty and none holding "#" (which separates the
// member from the output in a token's key).
func checkMemberPath(path string) error {
	if path == "" {
		return errors.New("a member has an empty path")
	}
	for _, n := range strings.Split(path, ".") {
		switch {
		case n == "":
			return fmt.Errorf("member path %q holds an empty name", path)
		case strings.Contains(n, "#"):
			return fmt.Errorf("member path %q holds a name with '#', which Landscaper keeps for output references", path)
		}
	}
	return nil
}

// checkType checks a member type "<provider>.<type>".
func checkType(path, typ string) error {
	provider, name, ok := strings.Cut(typ, ".")
	if !ok || provider == "" || name == "" {
		return fmt.Errorf("member %s has type %q, not of the form <provider>.<type>", path, typ)
	}
	return nil
}

// checkContext checks a string context: its keys are store paths, which
// become nix-store arguments.
func checkContext(what string, c map[string]ContextEntry) error {
	for p, entry := range c {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%s: the string context names %q, which is not a store path", what, p)
		}
		for _, o := range entry.Outputs {
			if o == "" || strings.ContainsAny(o, ",!") {
				return fmt.Errorf("%s: the string context names output %q of %s", what, o, p)
			}
		}
	}
	return nil
}

// unique records paths and refuses a repeated one.
type unique map[string]bool

func (u unique) add(list, path string) error {
	if u[path] {
		return fmt.Errorf("member %s appears twice in %s", path, list)
	}
	u[path] = true
	return nil
}

// decodeMember checks one member of the "a" list (or of "paths").
func decodeMember(m Member, namesOnly bool) error {
	if err := checkMemberPath(m.Path); err != nil {
		return err
	}
	if namesOnly {
		if m.Type != "" {
			return fmt.Errorf("member %s: a type (%q) where only names were asked for", m.Path, m.Type)
		}
		return nil
	}
	return checkType(m.Path, m.Type)
}

// decodeInputs checks a member's inputs: the JSON text of a value.
func decodeInputs(list, path, inputs string) error {
	if !json.Valid([]byte(inputs)) {
		return fmt.Errorf("member %s: the inputs in %s are not JSON: %.40q", path, list, inputs)
	}
	return nil
}

// decodeFailing reads a failing part: a list of attribute names (strings)
// and list indexes (non-negative integers).
func decodeFailing(path string, steps []json.RawMessage) (resource.Path, error) {
	p := resource.Path{}
	for _, raw := range steps {
		var name string
		if err := json.Unmarshal(raw, &name); err == nil {
			p = p.Attr(name)
			continue
		}
		i, err := strconv.Atoi(string(raw))
		if err != nil || i < 0 {
			return nil, fmt.Errorf("member %s: failing part %s: step %.40s is neither a name nor a list index", path, p, raw)
		}
		p = p.Index(i)
	}
	return p, nil
}

// decodeMembers decodes the driver's output in "members" mode; twice says
// whether the second and third evaluations ("b" and "c") were asked for.
// Without them, earlier holds the members an earlier evaluation masked,
// whose parts only were asked for; with them, the members masked now are
// returned.
func decodeMembers(data []byte, twice bool, earlier maskedInputs) (*Result, maskedInputs, error) {
	var raw membersOutput
	if err := decodeStrict(data, &raw); err != nil {
		return nil, nil, err
	}
	return readMembers(raw, twice, earlier)
}

// readMembers checks and reads what decodeMembers decoded.
func readMembers(raw membersOutput, twice bool, earlier maskedInputs) (*Result, maskedInputs, error) {
	if raw.A == nil {
		return nil, nil, errors.New(`the members ("a") are missing`)
	}
	masked := earlier
	var err error
	if twice {
		if masked, err = maskedMembers(raw.C); err != nil {
			return nil, nil, err
		}
	}
	// Sized for every member: those spelling "c" settled are added to
	// the members, the second evaluation and the known-value check too.
	res := &Result{Members: make([]Member, 0, len(raw.A)+len(raw.C))}
	seen := make(unique, len(raw.A)+len(raw.C))
	for _, mp := range raw.A {
		m := mp.Member
		if mp.Parts {
			if m.Inputs, m.Context, err = masked.splice("the evaluation", m.Path, m.Inputs, m.Context); err != nil {
				return nil, nil, err
			}
		}
		res.Members = append(res.Members, m)
		if err := decodeMember(m, false); err != nil {
			return nil, nil, err
		}
		if err := seen.add("the evaluation", m.Path); err != nil {
			return nil, nil, err
		}
		if err := decodeInputs("the evaluation", m.Path, m.Inputs); err != nil {
			return nil, nil, err
		}
		if err := checkContext("member "+m.Path, m.Context); err != nil {
			return nil, nil, err
		}
	}
	inputsByPath := func(list string, ms []pathInputs) (map[string]string, error) {
		out := make(map[string]string, len(ms)+len(raw.C))
		for _, m := range ms {
			if err := checkMemberPath(m.Path); err != nil {
				return nil, fmt.Errorf("%s: %w", list, err)
			}
			if _, dup := out[m.Path]; dup {
				return nil, fmt.Errorf("member %s appears twice in %s", m.Path, list)
			}
			inputs := m.Inputs
			if m.Parts {
				var err error
				if inputs, _, err = masked.splice(list, m.Path, inputs, nil); err != nil {
					return nil, err
				}
			}
			if err := decodeInputs(list, m.Path, inputs); err != nil {
				return nil, err
			}
			out[m.Path] = inputs
		}
		return out, nil
	}
	if raw.K != nil {
		checked, err := inputsByPath("the evaluation with known values", raw.K)
		if err != nil {
			return nil, nil, err
		}
		res.Checked = checked
	}
	if !twice {
		if raw.B != nil || raw.C != nil || len(raw.Computing) > 0 {
			return nil, nil, errors.New("a second evaluation that was not asked for")
		}
		return res, masked, nil
	}
	if raw.B == nil || raw.C == nil {
		return nil, nil, errors.New(`the second evaluations ("b" and "c") are missing`)
	}
	second, err := inputsByPath("the second evaluation", raw.B)
	if err != nil {
		return nil, nil, err
	}
	res.Second = second
	res.Failing = make(map[string][]resource.Path, len(raw.C))
	failingSeen := make(unique, len(raw.C))
	for _, m := range raw.C {
		if err := checkMemberPath(m.Path); err != nil {
			return nil, nil, fmt.Errorf("the evaluation of failing parts: %w", err)
		}
		if err := failingSeen.add("the evaluation of failing parts", m.Path); err != nil {
			return nil, nil, err
		}
		if m.Failing == nil {
			return nil, nil, fmt.Errorf("member %s: no list of failing parts", m.Path)
		}
		if m.Inputs != nil {
			// Settled: no other spelling evaluated it, all give these.
			if err := settle(res, m, seen); err != nil {
				return nil, nil, err
			}
			continue
		}
		for _, steps := range m.Failing {
			p, err := decodeFailing(m.Path, steps)
			if err != nil {
				return nil, nil, err
			}
			res.Failing[m.Path] = append(res.Failing[m.Path], p)
		}
	}
	// A member left out of "b" (and perhaps "k") is one whose failing
	// parts compute with outputs: the engine's reading of it rests on
	// those parts, so it must have some.
	for _, path := range raw.Computing {
		if len(res.Failing[path]) == 0 {
			return nil, nil, fmt.Errorf("member %s: left out of the second evaluation without failing parts", path)
		}
		if _, ok := second[path]; ok {
			return nil, nil, fmt.Errorf("member %s: left out of the second evaluation, and in it", path)
		}
		if res.Computing == nil {
			res.Computing = map[string]bool{}
		}
		res.Computing[path] = true
	}
	return res, masked, nil
}

// settle adds a member the evaluation with throwing outputs settled: its
// inputs are the same in every spelling.
func settle(res *Result, m pathFailing, seen unique) error {
	if len(m.Failing) != 0 {
		return fmt.Errorf("member %s: settled with failing parts", m.Path)
	}
	mem := Member{Path: m.Path, Type: m.Type, Inputs: *m.Inputs, Context: m.Context}
	if err := decodeMember(mem, false); err != nil {
		return err
	}
	if err := seen.add("the evaluation", m.Path); err != nil {
		return err
	}
	if err := decodeInputs("the evaluation", m.Path, mem.Inputs); err != nil {
		return err
	}
	if err := checkContext("member "+m.Path, mem.Context); err != nil {
		return err
	}
	res.Members = append(res.Members, mem)
	res.Second[m.Path] = mem.Inputs
	if res.Checked != nil {
		res.Checked[m.Path] = mem.Inputs
	}
	return nil
}

// decodeStructure decodes the driver's output in "paths" or "names" mode.
func decodeStructure(data []byte, namesOnly bool) ([]Member, error) {
	var raw struct {
		Paths []Member `json:"paths"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return nil, err
	}
	return checkStructure(raw.Paths, namesOnly)
}

// checkStructure checks the structure decodeStructure decoded.
func checkStructure(paths []Member, namesOnly bool) ([]Member, error) {
	if paths == nil {
		return nil, errors.New(`the members ("paths") are missing`)
	}
	seen := make(unique, len(paths))
	for _, m := range paths {
		if err := decodeMember(m, namesOnly); err != nil {
			return nil, err
		}
		if err := seen.add("the structure", m.Path); err != nil {
			return nil, err
		}
		if m.Inputs != "" || m.Context != nil {
			return nil, fmt.Errorf("member %s: inputs in the structure", m.Path)
		}
	}
	return paths, nil
}

// decodeProviders decodes the driver's output in "providers" mode.
func decodeProviders(data []byte) (map[string]DeclaredProvider, error) {
	var raw struct {
		Providers map[string]DeclaredProvider `json:"providers"`
		// Rollouts are decoded by decodeRollouts.
		Rollouts json.RawMessage `json:"rollouts"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return nil, err
	}
	if raw.Providers == nil {
		return nil, errors.New(`the providers ("providers") are missing`)
	}
	for name, p := range raw.Providers {
		if name == "" {
			return nil, errors.New("a declared provider has an empty name")
		}
		if p.Executable == "" {
			return nil, fmt.Errorf("declared provider %s: an empty executable", name)
		}
		if err := checkContext("declared provider "+name, p.Context); err != nil {
			return nil, err
		}
		switch p.Protocol {
		case "", "landscaper":
			if len(p.Args) > 0 || len(p.ResourceTypes) > 0 {
				return nil, fmt.Errorf("providers.%s: args and resourceTypes are for a NixOps4 provider (protocol = \"nixops4\")", name)
			}
		case "nixops4":
		default:
			return nil, fmt.Errorf("providers.%s: protocol %q (want \"landscaper\" or \"nixops4\")", name, p.Protocol)
		}
	}
	return raw.Providers, nil
}

// decodePlan decodes the driver's output in mode "plan": the structure,
// the members and those evaluated alone (asked for alone; forcedBy from
// the run's trace). One pass reads the whole output (1.6 MB for 10,000
// members), then the checks of modes "paths" and "members" run on what
// it decoded.
func decodePlan(data []byte, forcedBy map[string][]string, alone []string) ([]Member, *Result, maskedInputs, error) {
	var raw struct {
		Paths   []Member        `json:"paths"`
		Members *membersOutput  `json:"members"`
		Alone   json.RawMessage `json:"alone"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return nil, nil, nil, err
	}
	found, err := checkStructure(raw.Paths, false)
	if err != nil {
		return nil, nil, nil, err
	}
	if raw.Members == nil {
		return nil, nil, nil, errors.New(`the members ("members") are missing`)
	}
	res, masked, err := readMembers(*raw.Members, true, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if (raw.Alone != nil) != (len(alone) > 0) {
		return nil, nil, nil, fmt.Errorf("members evaluated alone given %v, asked for %v", raw.Alone != nil, len(alone) > 0)
	}
	if raw.Alone != nil {
		if res.Alone, err = decodeTracedList(raw.Alone, forcedBy, true, maskedInputs{}); err != nil {
			return nil, nil, nil, err
		}
		for p := range res.Alone {
			if !slices.Contains(alone, p) {
				return nil, nil, nil, fmt.Errorf("member %s was not asked to be evaluated alone", p)
			}
		}
	}
	return found, res, masked, nil
}
