package plugin

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// MaxMessageSize is the largest message either side of a provider
// connection sends or accepts, engine and provider alike: 64 MiB. (gRPC's
// own default is 4 MiB for what a server receives and 2 GiB for the rest,
// so a provider could return a state it could not be sent back.)
//
// A resource's recorded state must fit in it together with its inputs,
// since every later plan and update sends both: a create, update or read
// whose result would not is refused with an error diagnostic instead of
// being recorded, and a request that would not fit is not sent.
const MaxMessageSize = 64 << 20

// serverOptions are the gRPC limits of the provider's side, and its
// stream workers: calls are served by goroutines kept from one call to the
// next (more start when they are all busy), not one new goroutine per
// call whose stack grows again each time (a tenth of a provider's CPU in
// an apply of 10,000 files).
func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize), grpc.NumStreamWorkers(streamWorkers)}
}

// streamWorkers is how many goroutines serve calls ahead of need.
const streamWorkers = 16

// dialOptions are the gRPC limits of the engine's side. They come after
// go-plugin's own (2 GiB both ways) and so replace them.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize))}
}

// mib formats a byte count in MiB, or in bytes if that would look like
// the limit without being it.
func mib(n int) string {
	s := fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	if n != MaxMessageSize && s == fmt.Sprintf("%.1f MiB", float64(MaxMessageSize)/(1<<20)) {
		return fmt.Sprintf("%d bytes", n)
	}
	return s
}

// largest names the largest top-level attribute of a JSON object, under
// prefix ("outputs"), with its size; "" if v is not an object.
func largest(prefix string, v []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	best := names[0]
	for _, n := range names[1:] {
		if len(m[n]) > len(m[best]) {
			best = n
		}
	}
	return fmt.Sprintf("%s.%s is %s", prefix, best, mib(len(m[best])))
}

// biggestPart describes what makes a state large: its largest input,
// output or private data.
func biggestPart(st *resourcev1.State) string {
	in, out := len(st.GetInputs().GetJson()), len(st.GetOutputs().GetJson())
	switch {
	case len(st.GetPrivate()) > in && len(st.GetPrivate()) > out:
		return "its private data is " + mib(len(st.GetPrivate()))
	case in > out:
		if s := largest("inputs", st.GetInputs().GetJson()); s != "" {
			return s
		}
		return "its inputs are " + mib(in)
	default:
		if s := largest("outputs", st.GetOutputs().GetJson()); s != "" {
			return s
		}
		return "its outputs are " + mib(out)
	}
}

// fitResult checks that the state a create, update or read would leave
// recorded (the inputs recorded, the result's outputs and private data)
// could be sent back in the largest request that carries it: a plan or an
// update with desired inputs as large as the recorded ones. If it could
// not, the result is replaced by an error diagnostic and nothing of it is
// recorded; otherwise res is returned as it is.
//
// op is what produced the result ("create", "update", "read"); recorded
// and desired are the inputs the engine would record and the ones it sent.
func fitResult(op, typ, name string, recorded, desired *resourcev1.Values, outputs *resourcev1.Values, private []byte) *resource.Diagnostic {
	st := &resourcev1.State{Inputs: recorded, Outputs: outputs, Private: private}
	size := proto.Size(&resourcev1.PlanRequest{Type: typ, Name: name, Prior: st, Desired: desired})
	if size <= MaxMessageSize {
		return nil
	}
	return &resource.Diagnostic{
		Severity: resource.SeverityError,
		Summary:  fmt.Sprintf("result of %s too large to record", op),
		Detail: fmt.Sprintf("%s: with its inputs it takes %s, and a provider call carries at most %s (the provider message limit); it was not recorded. Make its inputs or outputs smaller, e.g. keep large data in files and pass their paths",
			biggestPart(st), mib(size), mib(MaxMessageSize)),
	}
}

// fitRequest checks a request before it is sent: one larger than
// MaxMessageSize would be refused by gRPC after the fact, and the engine
// could not tell whether the provider acted on it. The diagnostic says
// what makes it large and what the user can do: a recorded state (prior)
// too large to send again was recorded by an older landscaper, which had
// no limit on what it recorded.
func fitRequest(call, typ, name string, req proto.Message, prior *resourcev1.State) resource.Diagnostics {
	size := proto.Size(req)
	if size <= MaxMessageSize {
		return nil
	}
	detail := fmt.Sprintf("the %s request takes %s, and a provider call carries at most %s (the provider message limit); nothing was sent", call, mib(size), mib(MaxMessageSize))
	switch {
	case prior == nil:
		detail += ". Make the inputs smaller"
	case proto.Size(&resourcev1.DeleteRequest{Type: typ, Name: name, Prior: prior}) > MaxMessageSize:
		detail += fmt.Sprintf(". The recorded state alone takes %s (%s): it cannot be sent to the provider again. Remove the record with `landscaper state rm %s` and remove what it made by hand", mib(proto.Size(prior)), biggestPart(prior), name)
	case fitResult(call, typ, name, prior.Inputs, prior.Inputs, prior.Outputs, prior.Private) != nil:
		detail += fmt.Sprintf(". The recorded state takes %s (%s), too much to plan or update it with its inputs; it can still be destroyed (take it out of the deployment, or run `landscaper destroy`), or its record removed with `landscaper state rm %s`", mib(proto.Size(prior)), biggestPart(prior), name)
	default:
		detail += fmt.Sprintf(". The recorded state takes %s; make the inputs smaller", mib(proto.Size(prior)))
	}
	return resource.Diagnostics{{Severity: resource.SeverityError, Summary: "request too large", Detail: detail}}
}

// fitOperation applies fitResult to the result of a create or an update
// (inputs are the ones sent; priorInputs, for an update, the recorded
// ones, which the engine keeps when the update fails). A result that
// does not fit becomes its diagnostics and an error, without a state, so
// that the engine records nothing of it.
func fitOperation(op, typ, name string, inputs, priorInputs *resourcev1.Values, res *resource.Result) *resource.Result {
	if res == nil {
		return nil
	}
	failed := res.Diagnostics.HasError()
	if failed && !res.HasState {
		return res
	}
	recorded := inputs
	if failed && priorInputs != nil {
		recorded = priorInputs
	}
	d := fitResult(op, typ, name, recorded, inputs, valuesToProto(res.Outputs), res.Private)
	if d == nil {
		return res
	}
	return &resource.Result{Diagnostics: append(slices.Clone(res.Diagnostics), *d)}
}

// fitRead applies fitResult to a read's response: the engine records its
// outputs (or keeps the recorded ones when it reports none), its private
// data and, from a state the provider upgraded, the upgraded inputs. One that does not fit becomes an error.
func fitRead(typ, name string, prior *resourcev1.State, resp *resourcev1.ReadResponse) *resourcev1.ReadResponse {
	if resp == nil || !resp.Exists || diagsFromProto(resp.Diagnostics).HasError() {
		return resp
	}
	outputs := resp.Outputs
	if len(outputs.GetJson()) == 0 {
		outputs = prior.GetOutputs()
	}
	recorded := prior.GetInputs()
	if up := resp.GetUpgradedPrior(); up != nil {
		recorded = up.GetInputs()
	}
	d := fitResult("read", typ, name, recorded, recorded, outputs, resp.Private)
	if d == nil {
		return resp
	}
	return &resourcev1.ReadResponse{Exists: true, Diagnostics: append(slices.Clone(resp.Diagnostics), diagsToProto(resource.Diagnostics{*d})...)}
}
