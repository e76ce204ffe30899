package resource

import (
	"encoding/json"
	"maps"
	"slices"
)

// DeclaredSensitive lists the paths in doc that attrs declare sensitive
// and that doc holds: a sensitive attribute, and one inside an object or
// inside each element of a list(object) or map(object) that declares its
// attributes (healthChecks[1].token, files."/etc/key".contents).
func DeclaredSensitive(attrs []Attribute, doc json.RawMessage) []Path {
	return declaredSensitive(attrs, doc, nil)
}

func declaredSensitive(attrs []Attribute, doc json.RawMessage, at Path) []Path {
	var obj map[string]json.RawMessage
	if json.Unmarshal(doc, &obj) != nil {
		return nil
	}
	var out []Path
	for _, a := range attrs {
		v, ok := obj[a.Name]
		if !ok {
			continue
		}
		p := at.Attr(a.Name)
		if a.Sensitive {
			out = append(out, p)
			continue
		}
		if len(a.Attributes) == 0 {
			continue
		}
		switch a.Type {
		case "object":
			out = append(out, declaredSensitive(a.Attributes, v, p)...)
		case "list(object)":
			var items []json.RawMessage
			_ = json.Unmarshal(v, &items)
			for i, item := range items {
				out = append(out, declaredSensitive(a.Attributes, item, p.Index(i))...)
			}
		case "map(object)":
			var items map[string]json.RawMessage
			_ = json.Unmarshal(v, &items)
			for _, k := range slices.Sorted(maps.Keys(items)) {
				out = append(out, declaredSensitive(a.Attributes, items[k], p.Key(k))...)
			}
		}
	}
	return out
}
