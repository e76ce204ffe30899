package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Rollout is a rolling update the deployment declares: its members in
// update order, how many at a time, and how many may fail in one batch
// before the rollout stops.
type Rollout struct {
	Name        string
	Members     []string
	BatchSize   int
	MaxFailures int
}

// decodeRollouts decodes and checks the rollouts in the driver's output in
// "providers" mode, naming the rollout and attribute of each problem.
func decodeRollouts(data []byte) (map[string]Rollout, error) {
	var raw struct {
		Rollouts map[string]map[string]json.RawMessage `json:"rollouts"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("rollouts: %w", err)
	}
	out := make(map[string]Rollout, len(raw.Rollouts))
	var errs []error
	names := make([]string, 0, len(raw.Rollouts))
	for n := range raw.Rollouts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		attrs := raw.Rollouts[name]
		r := Rollout{Name: name, BatchSize: 1}
		bad := func(attr, format string, args ...any) {
			errs = append(errs, fmt.Errorf("rollouts.%s.%s: %s", name, attr, fmt.Sprintf(format, args...)))
		}
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := attrs[k]
			switch k {
			case "members":
				if err := json.Unmarshal(v, &r.Members); err != nil {
					bad(k, "must be a list of member paths (strings), such as [ \"web1\" \"web2\" ]")
				}
			case "batchSize", "maxFailures":
				var f float64
				min := 1.0
				if k == "maxFailures" {
					min = 0
				}
				if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || f < min || f > 1e6 {
					bad(k, "must be a whole number of at least %v", min)
					continue
				}
				if k == "batchSize" {
					r.BatchSize = int(f)
				} else {
					r.MaxFailures = int(f)
				}
			default:
				bad(k, "unknown attribute (a rollout has members, batchSize and maxFailures)")
			}
		}
		if _, ok := attrs["members"]; !ok {
			bad("members", "missing: list the members to update, in order")
		}
		seen := map[string]bool{}
		for i, m := range r.Members {
			if seen[m] {
				bad(fmt.Sprintf("members[%d]", i), "%q is listed twice", m)
			}
			seen[m] = true
		}
		out[name] = r
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
