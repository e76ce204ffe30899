package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// rule is a validator declared on an attribute: the SDK enforces it at
// the value's path before the provider's Validate runs, and the schema
// says it in the attribute's description.
type rule interface {
	// judge returns why a value of the attribute's type breaks the rule
	// (shown is how the value may be named in the message), or "".
	judge(v json.RawMessage, shown string) (summary, detail string)
	// describe says the rule in the schema ("One of: ...").
	describe() string
	// fits reports whether the rule can judge values of an attribute
	// type, and whether the rule itself is well made.
	fits(typ string) error
}

// OneOf allows only the given strings.
func (a Attr) OneOf(values ...string) Attr {
	a.rules = append(a.rules, oneOf(values))
	return a
}

// Between allows only numbers from min to max, both included.
func (a Attr) Between(min, max float64) Attr {
	a.rules = append(a.rules, between{min, max})
	return a
}

// Matches allows only strings that the regular expression pattern (Go's
// syntax) matches; what says in words what is wanted ("a lowercase
// name"), for the error message. Anchor the pattern (^...$) to judge the
// whole string.
func (a Attr) Matches(pattern, what string) Attr {
	re, err := regexp.Compile(pattern)
	a.rules = append(a.rules, matches{pattern: pattern, re: re, err: err, what: what})
	return a
}

type oneOf []string

func (r oneOf) judge(v json.RawMessage, shown string) (string, string) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", ""
	}
	for _, allowed := range r {
		if s == allowed {
			return "", ""
		}
	}
	return "not an allowed value", fmt.Sprintf("must be %s, got %s", r.list(" or "), shown)
}

func (r oneOf) list(last string) string {
	quoted := make([]string, len(r))
	for i, s := range r {
		quoted[i] = strconv.Quote(s)
	}
	if len(quoted) < 2 {
		return strings.Join(quoted, "")
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + last + quoted[len(quoted)-1]
}

func (r oneOf) describe() string { return "One of " + r.list(", ") + "." }

func (r oneOf) fits(typ string) error {
	if len(r) == 0 {
		return errors.New("OneOf allows no value")
	}
	if typ != "string" {
		return fmt.Errorf("OneOf judges strings, not %s values", typ)
	}
	return nil
}

type between struct{ min, max float64 }

func (r between) judge(v json.RawMessage, shown string) (string, string) {
	var f float64
	if json.Unmarshal(v, &f) != nil || (f >= r.min && f <= r.max) {
		return "", ""
	}
	return "out of range", fmt.Sprintf("must be from %v to %v, got %s", r.min, r.max, shown)
}

func (r between) describe() string { return fmt.Sprintf("From %v to %v.", r.min, r.max) }

func (r between) fits(typ string) error {
	if r.min > r.max {
		return fmt.Errorf("Between(%v, %v) allows no value", r.min, r.max)
	}
	if typ != "number" && typ != "integer" {
		return fmt.Errorf("Between judges numbers, not %s values", typ)
	}
	return nil
}

type matches struct {
	pattern string
	re      *regexp.Regexp
	err     error
	what    string
}

func (r matches) judge(v json.RawMessage, shown string) (string, string) {
	var s string
	if r.re == nil || json.Unmarshal(v, &s) != nil || r.re.MatchString(s) {
		return "", ""
	}
	return "invalid value", fmt.Sprintf("must be %s (matching %s), got %s", r.what, r.pattern, shown)
}

func (r matches) describe() string { return "Matches " + r.pattern + "." }

func (r matches) fits(typ string) error {
	if r.err != nil {
		return fmt.Errorf("Matches: %w", r.err)
	}
	if typ != "string" {
		return fmt.Errorf("Matches judges strings, not %s values", typ)
	}
	return nil
}

// describeRules appends what the rules allow to a description.
func describeRules(description string, rules []rule) string {
	parts := []string{}
	if description != "" {
		parts = append(parts, description)
	}
	for _, r := range rules {
		parts = append(parts, r.describe())
	}
	return strings.Join(parts, " ")
}

// scalarType is the type a rule of attribute type typ judges: the
// elements' type of a list or map (a rule applies to each), else typ.
func scalarType(typ string) string {
	for _, wrap := range []string{"list(", "map("} {
		if strings.HasPrefix(typ, wrap) && strings.HasSuffix(typ, ")") {
			return scalarType(typ[len(wrap) : len(typ)-1])
		}
	}
	return typ
}

// checkRuleDecls reports rules that cannot judge their attribute's
// values, and broken rules, inside nested attributes too.
func checkRuleDecls(attrs []Attr, what string) error {
	var errs []error
	for _, a := range attrs {
		for _, r := range a.rules {
			if err := r.fits(scalarType(a.Type)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", what, a.Name, err))
			}
		}
		if err := checkRuleDecls(a.nested, "attribute"); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", what, a.Name, err))
		}
	}
	return errors.Join(errs...)
}

// enforceRules judges the values of an object checked already (types
// right, defaults filled in) by the rules of their attributes, inside
// objects and lists and maps of them too. Values not known yet are not
// judged; sensitive ones (or ones inside a sensitive value: secret) are
// not shown.
func enforceRules(attrs []Attr, obj map[string]json.RawMessage, at resource.Path, unknown []resource.Path, secret bool) resource.Diagnostics {
	var diags resource.Diagnostics
	for _, a := range attrs {
		v, given := obj[a.Name]
		if !given || isNull(v) {
			continue
		}
		diags = append(diags, enforceOn(a, v, at.Attr(a.Name), unknown, secret)...)
	}
	return diags
}

func enforceOn(a Attr, v json.RawMessage, p resource.Path, unknown []resource.Path, secret bool) resource.Diagnostics {
	if resource.Covered(p, unknown) || isNull(v) {
		return nil
	}
	secret = secret || a.Attribute.Sensitive
	var diags resource.Diagnostics
	switch {
	case strings.HasPrefix(a.Type, "list("):
		var items []json.RawMessage
		_ = json.Unmarshal(v, &items)
		elem := a
		elem.Type = a.Type[len("list(") : len(a.Type)-1]
		for i, item := range items {
			diags = append(diags, enforceOn(elem, item, p.Index(i), unknown, secret)...)
		}
		return diags
	case strings.HasPrefix(a.Type, "map("):
		var items map[string]json.RawMessage
		_ = json.Unmarshal(v, &items)
		elem := a
		elem.Type = a.Type[len("map(") : len(a.Type)-1]
		for _, k := range sortedKeys(items) {
			diags = append(diags, enforceOn(elem, items[k], p.Key(k), unknown, secret)...)
		}
		return diags
	case a.Type == "object":
		var obj map[string]json.RawMessage
		_ = json.Unmarshal(v, &obj)
		return enforceRules(a.nested, obj, p, unknown, secret)
	}
	shown := "another value"
	if !secret {
		shown = string(v)
	}
	for _, r := range a.rules {
		if summary, detail := r.judge(v, shown); summary != "" {
			diags = append(diags, resource.Error(p, summary, "%s", detail))
		}
	}
	return diags
}
