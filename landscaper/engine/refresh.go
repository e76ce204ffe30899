package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// recoverPending settles the operations a killed run left pending: the
// provider is asked (Read) what exists, so the resource is neither made
// twice nor forgotten. The result is kept in memory; an apply writes it.
func (e *Engine) recoverPending(ctx context.Context) error {
	names := make([]string, 0, len(e.state.Pending))
	for n := range e.state.Pending {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := e.state.Pending[name]
		prior := e.state.Resources[name]
		rec := &state.Resource{Type: p.Type, Provider: p.Provider, ProviderPath: p.ProviderPath, Inputs: p.Inputs, SensitiveInputs: p.SensitiveInputs, SchemaVersion: p.SchemaVersion}
		if prior != nil && prior.Type == p.Type {
			rec = prior
		}
		prov, err := e.providerForRecord(ctx, rec)
		if err != nil {
			return fmt.Errorf("settle interrupted %s of %s: %w", p.Operation, name, err)
		}
		rs := recordToState(rec)
		if p.Operation == state.OpCreate && (prior == nil || prior.Type != p.Type) {
			rs.Outputs = resource.Values{}
		}
		resp, err := prov.Read(ctx, resource.ReadRequest{Type: rec.Type, Name: name, Prior: *rs})
		if err != nil {
			return fmt.Errorf("settle interrupted %s of %s: %w", p.Operation, name, err)
		}
		if err := diagError(resp.Diagnostics); err != nil {
			return &MemberError{Member: name, Type: rec.Type, Err: fmt.Errorf("settle interrupted %s: %w", p.Operation, err)}
		}
		switch {
		case resp.Exists:
			adopted := *upgradedRecord(rec, resp.UpgradedPrior)
			adopted.Outputs, adopted.SensitiveOutputs, adopted.Private, adopted.SchemaVersion = resp.Outputs.JSON, resp.Outputs.Sensitive, resp.Private, resp.SchemaVersion
			if len(adopted.Outputs) == 0 {
				adopted.Outputs = upgradedRecord(rec, resp.UpgradedPrior).Outputs
			}
			e.state.Resources[name] = &adopted
			e.learnSecrets(&adopted)
		case prior != nil && prior.Type != p.Type:
			// The new one was not made; the old one is what Read said
			// of the record we asked about, which was the new one.
		default:
			delete(e.state.Resources, name)
		}
		delete(e.state.Pending, name)
		e.settled = append(e.settled, name)
		e.emit(Event{Kind: EventInfo, Member: name, Message: fmt.Sprintf("settled an interrupted %s: the resource %s", p.Operation, map[bool]string{true: "exists", false: "does not exist"}[resp.Exists])})
	}
	return nil
}

// refreshed is what the providers said of every recorded resource.
type refreshed []refreshRead

type refreshRead struct {
	name string
	resp *resource.ReadResponse
	err  error
}

// ensureRecordedProviders registers the provider of every recorded
// resource (from the schema cache or by starting it), so that later
// concurrent work only reads the set of types.
func (e *Engine) ensureRecordedProviders(ctx context.Context) error {
	seen := map[string]bool{}
	for _, r := range e.state.Resources {
		if seen[r.Provider] {
			continue
		}
		seen[r.Provider] = true
		if _, err := e.providerForRecord(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// readAll asks every provider what exists now, in batches. It changes
// nothing; see applyRefresh.
func (e *Engine) readAll(ctx context.Context) refreshed {
	names := make([]string, 0, len(e.state.Resources))
	for n := range e.state.Resources {
		names = append(names, n)
	}
	sort.Strings(names)
	results := make(refreshed, len(names))
	byProvider := map[string][]int{}
	for i, name := range names {
		results[i].name = name
		p := e.state.Resources[name].Provider
		byProvider[p] = append(byProvider[p], i)
	}
	var wg sync.WaitGroup
	for provider, idx := range byProvider {
		prov, err := e.providers.Provider(provider)
		if err != nil {
			for _, i := range idx {
				results[i].err = err
			}
			continue
		}
		reqs := make([]resource.ReadRequest, len(idx))
		for j, i := range idx {
			r := e.state.Resources[names[i]]
			reqs[j] = resource.ReadRequest{Type: r.Type, Name: names[i], Prior: *recordToState(r)}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resource.ReadEach(ctx, prov, reqs, e.opts.Parallelism, func(j int, resp *resource.ReadResponse, err error) {
				results[idx[j]].resp, results[idx[j]].err = resp, err
			})
		}()
	}
	wg.Wait()
	return results
}

// applyRefresh updates the recorded outputs with what the providers said;
// resources deleted outside Landscaper are forgotten (and planned again).
// It returns a line for each change found.
func (e *Engine) applyRefresh(results refreshed) ([]string, error) {
	var drift []string
	var errs []error
	for _, res := range results {
		r := e.state.Resources[res.name]
		if res.err != nil {
			errs = append(errs, &MemberError{Member: res.name, Type: r.Type, Err: fmt.Errorf("refresh: %w", res.err)})
			continue
		}
		if err := diagError(res.resp.Diagnostics); err != nil {
			errs = append(errs, &MemberError{Member: res.name, Type: r.Type, Err: fmt.Errorf("refresh: %w", err)})
			continue
		}
		if !res.resp.Exists {
			drift = append(drift, fmt.Sprintf("%s (%s) no longer exists", res.name, r.Type))
			delete(e.state.Resources, res.name)
			continue
		}
		// Drift is what differs from the record as the provider
		// upgraded it, if it did: an upgrade changes no resource.
		before := upgradedRecord(r, res.resp.UpgradedPrior)
		if before != r {
			e.state.Resources[res.name] = before
			e.upgraded = append(e.upgraded, res.name)
			e.learnSecrets(before)
			e.emit(Event{Kind: EventInfo, Member: res.name, Type: r.Type, Message: fmt.Sprintf("the provider upgraded the recorded state from schema version %d to %d", r.SchemaVersion, before.SchemaVersion)})
		}
		if len(res.resp.Outputs.JSON) > 0 && !jsonSame(res.resp.Outputs.JSON, before.Outputs) {
			updated := *before
			updated.Outputs, updated.SensitiveOutputs, updated.Private, updated.SchemaVersion = res.resp.Outputs.JSON, res.resp.Outputs.Sensitive, res.resp.Private, res.resp.SchemaVersion
			e.state.Resources[res.name] = &updated
			e.learnSecrets(&updated)
			line := fmt.Sprintf("%s (%s) changed outside landscaper", res.name, r.Type)
			if d := outputChanges(before, &updated); d != "" {
				line += ": " + e.redact.Redact(d)
			}
			drift = append(drift, line)
		}
	}
	return drift, errors.Join(errs...)
}

// upgradedRecord is rec with the state a provider upgraded it to (its
// inputs, outputs, private data and schema version), or rec itself when
// the provider upgraded nothing.
func upgradedRecord(rec *state.Resource, up *resource.State) *state.Resource {
	if up == nil {
		return rec
	}
	updated := *rec
	updated.Inputs, updated.SensitiveInputs = up.Inputs.JSON, up.Inputs.Sensitive
	updated.Outputs, updated.SensitiveOutputs = up.Outputs.JSON, up.Outputs.Sensitive
	updated.Private, updated.SchemaVersion = up.Private, up.SchemaVersion
	return &updated
}

// maxDriftValue bounds each value a drift line shows.
const maxDriftValue = 80

// outputChanges describes the outputs that differ between two records of a
// resource: `outputs.sha256: "ab…" -> "cd…"`; a sensitive one only by name.
func outputChanges(before, after *state.Resource) string {
	var old, now map[string]json.RawMessage
	_ = json.Unmarshal(before.Outputs, &old)
	_ = json.Unmarshal(after.Outputs, &now)
	names := make([]string, 0, len(old)+len(now))
	for n := range old {
		names = append(names, n)
	}
	for n := range now {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		o, hadOld := old[n]
		v, hasNow := now[n]
		if hadOld && hasNow && jsonSame(o, v) {
			continue
		}
		p := resource.AttrPath(n)
		if resource.Covered(p, before.SensitiveOutputs) || resource.Covered(p, after.SensitiveOutputs) {
			parts = append(parts, "outputs."+p.String()+" (sensitive) changed")
			continue
		}
		parts = append(parts, fmt.Sprintf("outputs.%s: %s -> %s", p, driftValue(o, hadOld), driftValue(v, hasNow)))
	}
	return strings.Join(parts, "; ")
}

// driftValue shows a value of a drift line, shortened.
func driftValue(v json.RawMessage, present bool) string {
	if !present {
		return "(none)"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return "(unreadable)"
	}
	s := b.String()
	if r := []rune(s); len(r) > maxDriftValue {
		s = string(r[:maxDriftValue-1]) + "…"
	}
	return s
}
