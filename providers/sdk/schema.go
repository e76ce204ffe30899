// Package sdk is how Landscaper providers are written: declare each resource
// type's inputs and outputs, give typed Create/Update/Delete/Read functions,
// and call Serve from main. The SDK decodes and checks inputs against the
// schema (unknown names, missing required inputs, wrong types, defaults),
// plans by comparing inputs, marks sensitive outputs and serves the whole
// through the resource protocol.
package sdk

import (
	"encoding/json"
	"fmt"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Attr declares one input or output. Build it with String, Number, Integer, Bool,
// List, Map or Object and refine it with the methods.
type Attr struct {
	resource.Attribute
	// nested are the declarations of the attributes of an object, or of
	// each element of a list or map of objects, with their rules.
	nested []Attr
	// rules are the attribute's validators (OneOf, Between, Matches).
	rules []rule
	// keepPrior and keepFrom are the output's KeepPrior.
	keepPrior bool
	keepFrom  []string
}

func attr(name, typ, description string) Attr {
	return Attr{Attribute: resource.Attribute{Name: name, Type: typ, Description: description}}
}

// String declares a string attribute.
func String(name, description string) Attr { return attr(name, "string", description) }

// Number declares a number attribute.
func Number(name, description string) Attr { return attr(name, "number", description) }

// Integer declares a whole-number attribute: a number with a fraction is
// refused at its attribute path before the provider sees it.
func Integer(name, description string) Attr { return attr(name, "integer", description) }

// Bool declares a boolean attribute.
func Bool(name, description string) Attr { return attr(name, "bool", description) }

// List declares a list whose elements have type elem ("string", ...).
func List(name, elem, description string) Attr {
	return attr(name, "list("+elem+")", description)
}

// Map declares an attribute set whose values have type elem.
func Map(name, elem, description string) Attr {
	return attr(name, "map("+elem+")", description)
}

// Object declares an attribute set with the given attributes.
func Object(name, description string, attrs ...Attr) Attr {
	return withAttributes(attr(name, "object", description), attrs)
}

// ListOfObjects declares a list whose elements are attribute sets with the
// given attributes: each element is checked against them (unknown names,
// required ones, types, defaults filled in) with its path, such as
// name[1].timeout, and decodes into a slice of structs.
func ListOfObjects(name, description string, attrs ...Attr) Attr {
	return withAttributes(attr(name, "list(object)", description), attrs)
}

// MapOfObjects declares an attribute set whose values are attribute sets
// with the given attributes, checked as ListOfObjects' elements are, at
// paths such as name."key".mode; it decodes into a map of structs.
func MapOfObjects(name, description string, attrs ...Attr) Attr {
	return withAttributes(attr(name, "map(object)", description), attrs)
}

func withAttributes(a Attr, attrs []Attr) Attr {
	a.nested = attrs
	a.Attributes = attributes(attrs)
	return a
}

// Required marks the input as one that must be given.
func (a Attr) Required() Attr { a.Attribute.Required = true; return a }

// Sensitive marks the value as secret: it is never shown or logged.
func (a Attr) Sensitive() Attr { a.Attribute.Sensitive = true; return a }

// ForceNew makes a change of this input replace the resource.
func (a Attr) ForceNew() Attr { a.Attribute.ForceNew = true; return a }

// Default sets the value used when the input is not given.
func (a Attr) Default(v any) Attr {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sdk: default of %s: %v", a.Name, err))
	}
	a.Attribute.Default = b
	return a
}

// KeepPrior plans this output, on an update, as its recorded value when
// none of the inputs it comes from (from; none given: it comes from no
// input, say a token made at create) changed or is unknown: the update
// must then return that value. On a create or replace it is known only
// after apply, as any output, and so is an empty recorded value (a state
// written before the output existed).
func (a Attr) KeepPrior(from ...string) Attr {
	a.keepPrior, a.keepFrom = true, from
	return a
}

// attributes is the published form of declarations: the rules of each
// attribute are said in its description, as the schema shows them.
func attributes(as []Attr) []resource.Attribute {
	out := make([]resource.Attribute, len(as))
	for i, a := range as {
		out[i] = a.Attribute
		out[i].Description = describeRules(a.Description, a.rules)
		if len(a.nested) > 0 {
			out[i].Attributes = attributes(a.nested)
		}
	}
	return out
}
