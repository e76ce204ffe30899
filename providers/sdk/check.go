package sdk

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// checkObject checks a JSON object against declared attributes: no unknown
// names, required ones present, values of the declared types. It returns the
// object with defaults filled in. Values at unknown paths (known only after
// apply) are not checked.
func checkObject(attrs []resource.Attribute, doc json.RawMessage, at resource.Path, unknown []resource.Path) (map[string]json.RawMessage, resource.Diagnostics) {
	var diags resource.Diagnostics
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(doc)) > 0 && !isNull(doc) {
		if err := json.Unmarshal(doc, &obj); err != nil {
			return nil, resource.Diagnostics{resource.Error(at, "wrong type", "expected an attribute set, got %s", DescribeJSON(doc))}
		}
	}
	declared := make(map[string]resource.Attribute, len(attrs))
	for _, a := range attrs {
		declared[a.Name] = a
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := declared[name]; !ok {
			diags = append(diags, unknownName(at, name, attrs))
		}
	}
	for _, a := range attrs {
		p := at.Attr(a.Name)
		v, given := obj[a.Name]
		if given && isNull(v) {
			delete(obj, a.Name)
			given = false
		}
		if resource.Covered(p, unknown) {
			continue
		}
		if !given {
			switch {
			case a.Required:
				diags = append(diags, resource.Error(p, "missing required input", "%s (%s) must be set", a.Name, a.Type))
			case len(a.Default) > 0:
				obj[a.Name] = a.Default
			}
			continue
		}
		fixed, d := checkValue(a, v, p, unknown)
		diags = append(diags, d...)
		obj[a.Name] = fixed
	}
	return obj, diags
}

// unknownName is the error about an attribute set's name that is not
// declared: an input of the resource type when at is the top, an
// attribute of the set at at otherwise.
func unknownName(at resource.Path, name string, attrs []resource.Attribute) resource.Diagnostic {
	if len(at) == 0 {
		return resource.Error(at.Attr(name), "unknown input", "%q is not an input of this resource type; known inputs: %s", name, attrNames(attrs))
	}
	return resource.Error(at.Attr(name), "unknown input", "%q is not an attribute of %s; known attributes: %s", name, at, attrNames(attrs))
}

// checkValue checks one value against its declaration and returns it with
// the defaults of the attribute sets in it filled in.
func checkValue(a resource.Attribute, v json.RawMessage, p resource.Path, unknown []resource.Path) (json.RawMessage, resource.Diagnostics) {
	if resource.Covered(p, unknown) {
		return v, nil
	}
	switch objectsIn(a) {
	case holdsObject:
		obj, diags := checkObject(a.Attributes, v, p, unknown)
		b, _ := json.Marshal(obj)
		return b, diags
	case holdsListOfObjects:
		return checkObjectList(a, v, p, unknown)
	case holdsMapOfObjects:
		return checkObjectMap(a, v, p, unknown)
	}
	return v, checkType(a.Type, v, p, unknown)
}

// objectHolding says where an attribute holds attribute sets whose
// attributes are declared.
type objectHolding int

const (
	holdsNoObjects objectHolding = iota
	holdsObject
	holdsListOfObjects
	holdsMapOfObjects
)

// objectsIn says where attribute a holds declared attribute sets. An
// object always declares its attributes (none: it takes none); a list or
// map of objects declares them only when it has any, and without them
// takes elements of any attributes (decoding into a struct still refuses
// names it has no field for).
func objectsIn(a resource.Attribute) objectHolding {
	switch {
	case a.Type == "object":
		return holdsObject
	case a.Type == "list(object)" && len(a.Attributes) > 0:
		return holdsListOfObjects
	case a.Type == "map(object)" && len(a.Attributes) > 0:
		return holdsMapOfObjects
	}
	return holdsNoObjects
}

// checkObjectList checks each element of a list(object) against the
// element's declared attributes, at paths such as name[1].timeout.
func checkObjectList(a resource.Attribute, v json.RawMessage, p resource.Path, unknown []resource.Path) (json.RawMessage, resource.Diagnostics) {
	var items []json.RawMessage
	if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '[' || json.Unmarshal(t, &items) != nil {
		return v, checkType(a.Type, v, p, unknown)
	}
	var diags resource.Diagnostics
	for i, item := range items {
		fixed, d := checkValue(resource.Attribute{Type: "object", Attributes: a.Attributes}, item, p.Index(i), unknown)
		items[i] = fixed
		diags = append(diags, d...)
	}
	b, _ := json.Marshal(items)
	return b, diags
}

// checkObjectMap checks each value of a map(object) against the declared
// attributes, at paths such as name."key".mode.
func checkObjectMap(a resource.Attribute, v json.RawMessage, p resource.Path, unknown []resource.Path) (json.RawMessage, resource.Diagnostics) {
	var items map[string]json.RawMessage
	if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &items) != nil {
		return v, checkType(a.Type, v, p, unknown)
	}
	var diags resource.Diagnostics
	for _, k := range sortedKeys(items) {
		fixed, d := checkValue(resource.Attribute{Type: "object", Attributes: a.Attributes}, items[k], p.Key(k), unknown)
		items[k] = fixed
		diags = append(diags, d...)
	}
	b, _ := json.Marshal(items)
	return b, diags
}

func checkType(typ string, v json.RawMessage, p resource.Path, unknown []resource.Path) resource.Diagnostics {
	if resource.Covered(p, unknown) {
		return nil
	}
	mismatch := func() resource.Diagnostics {
		return resource.Diagnostics{resource.Error(p, "wrong type", "expected %s, got %s", typ, DescribeJSON(v))}
	}
	trimmed := bytes.TrimSpace(v)
	if len(trimmed) == 0 {
		return mismatch()
	}
	switch {
	case typ == "any":
		return nil
	case typ == "string":
		if trimmed[0] != '"' {
			return mismatch()
		}
	case typ == "number":
		var f float64
		if json.Unmarshal(trimmed, &f) != nil {
			return mismatch()
		}
	case typ == "integer":
		var f float64
		if json.Unmarshal(trimmed, &f) != nil {
			return mismatch()
		}
		if f != math.Trunc(f) {
			return resource.Diagnostics{resource.Error(p, "not a whole number", "expected integer, got a number with a fraction")}
		}
	case typ == "bool":
		if !bytes.Equal(trimmed, []byte("true")) && !bytes.Equal(trimmed, []byte("false")) {
			return mismatch()
		}
	case strings.HasPrefix(typ, "list(") && strings.HasSuffix(typ, ")"):
		var items []json.RawMessage
		if json.Unmarshal(trimmed, &items) != nil {
			return mismatch()
		}
		elem := typ[len("list(") : len(typ)-1]
		var diags resource.Diagnostics
		for i, item := range items {
			diags = append(diags, checkType(elem, item, p.Index(i), unknown)...)
		}
		return diags
	case strings.HasPrefix(typ, "map(") && strings.HasSuffix(typ, ")"):
		var items map[string]json.RawMessage
		if trimmed[0] != '{' || json.Unmarshal(trimmed, &items) != nil {
			return mismatch()
		}
		elem := typ[len("map(") : len(typ)-1]
		keys := make([]string, 0, len(items))
		for k := range items {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var diags resource.Diagnostics
		for _, k := range keys {
			diags = append(diags, checkType(elem, items[k], p.Key(k), unknown)...)
		}
		return diags
	case typ == "object":
		if trimmed[0] != '{' {
			return mismatch()
		}
	}
	return nil
}

func isNull(v json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// DescribeJSON names the kind of a JSON value for error messages, without
// showing the value itself (it may be secret).
func DescribeJSON(v json.RawMessage) string {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an attribute set"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func attrNames(attrs []resource.Attribute) string {
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// changedAttrs lists the top-level attributes that differ between two
// objects, and whether any of them forces replacement.
func changedAttrs(attrs []resource.Attribute, prior, desired map[string]json.RawMessage, unknown []resource.Path) (changed, replace []resource.Path) {
	for _, a := range attrs {
		p := resource.AttrPath(a.Name)
		isUnknown := false
		for _, u := range unknown {
			if u.HasPrefix(p) {
				isUnknown = true
			}
		}
		if !isUnknown && jsonEqual(prior[a.Name], desired[a.Name]) {
			continue
		}
		changed = append(changed, p)
		if a.ForceNew {
			replace = append(replace, p)
		}
	}
	return changed, replace
}

// jsonEqual compares two JSON values by meaning, not by spelling
// (json.Marshal writes object keys sorted).
func jsonEqual(a, b json.RawMessage) bool {
	if isNull(a) || len(bytes.TrimSpace(a)) == 0 {
		return isNull(b) || len(bytes.TrimSpace(b)) == 0
	}
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	cx, _ := json.Marshal(x)
	cy, _ := json.Marshal(y)
	return bytes.Equal(cx, cy)
}
