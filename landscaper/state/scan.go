package state

// scanFields splits a JSON object already known to be valid JSON into its
// members, without decoding the values, as objectFields does but at a
// fraction of the cost. It reports false for anything it does not handle
// plainly (not an object, a name with an escape or given twice): the
// caller then uses objectFields, which says what is wrong.
func scanFields(raw []byte) (fields, bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	var out fields
	// Names seen, once there are more than a record has.
	var seen map[string]bool
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return out, true
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return nil, false
		}
		end := i + 1
		for end < len(raw) && raw[end] != '"' {
			if raw[end] == '\\' {
				return nil, false
			}
			end++
		}
		if end >= len(raw) {
			return nil, false
		}
		name := string(raw[i+1 : end])
		switch {
		case seen != nil:
			if seen[name] {
				return nil, false
			}
			seen[name] = true
		case out.has(name):
			return nil, false
		case len(out) == 16:
			seen = make(map[string]bool)
			for _, f := range out {
				seen[f.name] = true
			}
			seen[name] = true
		}
		i = skipSpace(raw, end+1)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		start := skipSpace(raw, i+1)
		stop, ok := skipValue(raw, start)
		if !ok {
			return nil, false
		}
		out = append(out, field{name, raw[start:stop]})
		i = skipSpace(raw, stop)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return out, true
		default:
			return nil, false
		}
	}
	return nil, false
}

func (fs fields) has(name string) bool {
	_, ok := fs.get(name)
	return ok
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at i.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return 0, false
			}
			i++
			if depth == 0 {
				return i, true
			}
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i, true // the end of the object holding a scalar
			}
			depth--
			i++
			if depth == 0 {
				return i, true
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i, true
			}
			i++
		default:
			i++
		}
	}
	if depth == 0 {
		return i, true
	}
	return 0, false
}
