package sdk

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// checkBinding checks that the Go type t holds the declared attributes:
// every attribute has a field of the same json name whose Go type can
// hold the attribute's type, and every field with a json name is declared.
// what names the attributes in messages ("input", "output"). A mistyped
// json tag is an error here, when the provider starts, instead of an
// input that is silently zero.
func checkBinding(t reflect.Type, attrs []resource.Attribute, what string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Interface {
		return nil // map[string]any takes whatever is declared
	}
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("%ss are held by %s, which is not a struct", what, t)
	}
	fields := jsonFields(t)
	var errs []error
	declared := map[string]bool{}
	for _, a := range attrs {
		declared[a.Name] = true
		f, ok := fields[a.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s %q has no field in %s (its json names: %s)", what, a.Name, t, strings.Join(sortedKeys(fields), ", ")))
			continue
		}
		if err := checkGoType(f.typ, a); err != nil {
			errs = append(errs, fmt.Errorf("%s %q (field %s.%s): %w", what, a.Name, t, f.name, err))
		}
	}
	for _, name := range sortedKeys(fields) {
		if !declared[name] {
			errs = append(errs, fmt.Errorf("field %s.%s (json name %q) is not a declared %s (declared: %s)", t, fields[name].name, name, what, attrNames(attrs)))
		}
	}
	return errors.Join(errs...)
}

// checkGoType checks that a Go type can hold values of an attribute, and
// that the structs that hold its declared attribute sets (an object, the
// elements of a list or map of objects) have a field for each of their
// attributes.
func checkGoType(t reflect.Type, a resource.Attribute) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	holding := objectsIn(a)
	if holding == holdsNoObjects || usesOwnDecoding(t) || t.Kind() == reflect.Interface {
		return checkTypeName(t, a.Type)
	}
	switch holding {
	case holdsListOfObjects:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return fmt.Errorf("Go type %s cannot hold %s values", t, a.Type)
		}
		if err := checkObjectGoType(t.Elem(), a.Attributes); err != nil {
			return fmt.Errorf("elements: %w", err)
		}
		return nil
	case holdsMapOfObjects:
		if t.Kind() != reflect.Map || t.Key().Kind() != reflect.String {
			return fmt.Errorf("Go type %s cannot hold %s values", t, a.Type)
		}
		if err := checkObjectGoType(t.Elem(), a.Attributes); err != nil {
			return fmt.Errorf("values: %w", err)
		}
		return nil
	}
	return checkObjectGoType(t, a.Attributes)
}

// checkObjectGoType checks that Go type t holds an attribute set with the
// declared attributes: a struct with a field for each, or a map or
// interface that takes any.
func checkObjectGoType(t reflect.Type, attrs []resource.Attribute) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if usesOwnDecoding(t) || t.Kind() == reflect.Interface {
		return nil
	}
	if t.Kind() == reflect.Map {
		return checkTypeName(t, "map(any)")
	}
	return checkBinding(t, attrs, "attribute")
}

// checkTypeName checks that Go type t can hold values of the attribute
// type typ ("string", "list(integer)", ...).
func checkTypeName(t reflect.Type, typ string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if usesOwnDecoding(t) || t.Kind() == reflect.Interface {
		return nil
	}
	wrong := func() error { return fmt.Errorf("Go type %s cannot hold %s values", t, typ) }
	switch {
	case typ == "any":
		return nil // decoding says whether a value fits
	case typ == "string":
		if t.Kind() != reflect.String && !(t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8) {
			return wrong()
		}
	case typ == "bool":
		if t.Kind() != reflect.Bool {
			return wrong()
		}
	case typ == "object":
		// An object element of a list or map, its attributes not
		// declared: decoding says whether a value fits.
		if t.Kind() != reflect.Struct && t.Kind() != reflect.Map {
			return wrong()
		}
	case typ == "number":
		if !isNumeric(t.Kind()) {
			return wrong()
		}
	case typ == "integer":
		if !isNumeric(t.Kind()) {
			return wrong()
		}
	case strings.HasPrefix(typ, "list(") && strings.HasSuffix(typ, ")"):
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return wrong()
		}
		if err := checkTypeName(t.Elem(), typ[len("list("):len(typ)-1]); err != nil {
			return fmt.Errorf("elements: %w", err)
		}
	case strings.HasPrefix(typ, "map(") && strings.HasSuffix(typ, ")"):
		if t.Kind() != reflect.Map || t.Key().Kind() != reflect.String {
			return wrong()
		}
		if err := checkTypeName(t.Elem(), typ[len("map("):len(typ)-1]); err != nil {
			return fmt.Errorf("values: %w", err)
		}
	default:
		return fmt.Errorf("unknown attribute type %q", typ)
	}
	return nil
}

func isNumeric(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// checkAttrs checks declarations themselves: names unique and not empty,
// types known, defaults of the declared type.
func checkAttrs(attrs []resource.Attribute, what string) error {
	var errs []error
	seen := map[string]bool{}
	for _, a := range attrs {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("an %s has no name", what))
			continue
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("%s %q is declared twice", what, a.Name))
		}
		seen[a.Name] = true
		if !knownTypeName(a.Type) {
			errs = append(errs, fmt.Errorf("%s %q: unknown type %q", what, a.Name, a.Type))
		}
		if len(a.Default) > 0 {
			if _, d := checkValue(a, a.Default, resource.AttrPath(a.Name), nil); len(d) > 0 {
				errs = append(errs, fmt.Errorf("%s %q: default: %v", what, a.Name, d.Err()))
			}
		}
		switch {
		case objectsIn(a) != holdsNoObjects:
			if err := checkAttrs(a.Attributes, "attribute"); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", what, a.Name, err))
			}
		case len(a.Attributes) > 0:
			errs = append(errs, fmt.Errorf("%s %q: declares attributes, but its type %s holds no attribute sets (use object, list(object) or map(object))", what, a.Name, a.Type))
		}
	}
	return errors.Join(errs...)
}

func knownTypeName(typ string) bool {
	switch typ {
	case "string", "number", "integer", "bool", "any", "object":
		return true
	}
	for _, wrap := range []string{"list(", "map("} {
		if strings.HasPrefix(typ, wrap) && strings.HasSuffix(typ, ")") {
			return knownTypeName(typ[len(wrap) : len(typ)-1])
		}
	}
	return false
}

// Check reports mistakes in the provider's declarations: types without
// an implementation, attributes declared twice or of unknown types, and
// json tags of the Go input and output types that do not match the
// declared attributes. Serve runs it before serving, and sdktest.New
// fails a test with it.
func (p *Provider) Check() error {
	if p.Name == "" {
		return errors.New("the provider has no name")
	}
	names := make([]string, 0, len(p.Types))
	for n := range p.Types {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := p.Types[n].check(); err != nil {
			errs = append(errs, fmt.Errorf("resource type %s.%s: %w", p.Name, n, err))
		}
	}
	return errors.Join(errs...)
}

func (t *Type[In, Out]) check() error {
	var errs []error
	if t.Create == nil {
		errs = append(errs, errors.New("it has no Create"))
	}
	if err := t.checkVersion(); err != nil {
		errs = append(errs, err)
	}
	if err := checkAttrs(attributes(t.Inputs), "input"); err != nil {
		errs = append(errs, err)
	}
	if err := checkAttrs(attributes(t.Outputs), "output"); err != nil {
		errs = append(errs, err)
	}
	if err := checkRuleDecls(t.Inputs, "input"); err != nil {
		errs = append(errs, err)
	}
	if err := checkOutputDecls(t.Inputs, t.Outputs); err != nil {
		errs = append(errs, err)
	}
	if err := checkInputHooks(t.Inputs, sortedKeys(t.SameInput), sortedKeys(t.ReplaceIf)); err != nil {
		errs = append(errs, err)
	}
	if err := checkBinding(reflect.TypeFor[In](), attributes(t.Inputs), "input"); err != nil {
		errs = append(errs, err)
	}
	if err := checkBinding(reflect.TypeFor[Out](), attributes(t.Outputs), "output"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkOutputDecls reports rules declared on outputs (only inputs are
// judged), KeepPrior on inputs, and KeepPrior naming inputs that are not
// declared.
func checkOutputDecls(inputs, outputs []Attr) error {
	var errs []error
	declared := map[string]bool{}
	for _, in := range inputs {
		declared[in.Name] = true
		if in.keepPrior {
			errs = append(errs, fmt.Errorf("input %q: KeepPrior is for outputs", in.Name))
		}
	}
	for _, out := range outputs {
		if len(out.rules) > 0 {
			errs = append(errs, fmt.Errorf("output %q: validators judge inputs, not outputs", out.Name))
		}
		for _, from := range out.keepFrom {
			if !declared[from] {
				errs = append(errs, fmt.Errorf("output %q: KeepPrior names %q, which is not a declared input (declared: %s)", out.Name, from, attrNames(attributes(inputs))))
			}
		}
	}
	return errors.Join(errs...)
}

// checkInputHooks reports SameInput and ReplaceIf entries for inputs that
// are not declared, and ReplaceIf entries for inputs that are not
// ForceNew (their changes never replace).
func checkInputHooks(inputs []Attr, same, replaceIf []string) error {
	declared := map[string]Attr{}
	for _, in := range inputs {
		declared[in.Name] = in
	}
	var errs []error
	for _, name := range same {
		if _, ok := declared[name]; !ok {
			errs = append(errs, fmt.Errorf("SameInput names %q, which is not a declared input (declared: %s)", name, attrNames(attributes(inputs))))
		}
	}
	for _, name := range replaceIf {
		in, ok := declared[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("ReplaceIf names %q, which is not a declared input (declared: %s)", name, attrNames(attributes(inputs))))
		case !in.Attribute.ForceNew:
			errs = append(errs, fmt.Errorf("ReplaceIf names input %q, which is not ForceNew: its changes never replace", name))
		}
	}
	return errors.Join(errs...)
}
