package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// batchProvider plans and reads by name: "fail-N" fails the call (a
// provider bug), "panic-N" panics, "slow-N" takes a moment; the rest
// plan an update and read outputs naming the resource. It counts calls
// and the most it ran at once.
type batchProvider struct {
	resource.Provider
	calls, running, most atomic.Int64
}

func (p *batchProvider) enter() func() {
	p.calls.Add(1)
	n := p.running.Add(1)
	for {
		m := p.most.Load()
		if n <= m || p.most.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { p.running.Add(-1) }
}

func (p *batchProvider) behave(name string) error {
	switch {
	case strings.HasPrefix(name, "fail-"):
		return fmt.Errorf("cannot plan %s", name)
	case strings.HasPrefix(name, "panic-"):
		panic("bad " + name)
	case strings.HasPrefix(name, "slow-"):
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (p *batchProvider) Plan(_ context.Context, req resource.PlanRequest) (*resource.PlanResponse, error) {
	defer p.enter()()
	if err := p.behave(req.Name); err != nil {
		return nil, err
	}
	return &resource.PlanResponse{Action: resource.ActionUpdate, PlannedOutputs: []byte(`{"name":"` + req.Name + `"}`)}, nil
}

func (p *batchProvider) Read(_ context.Context, req resource.ReadRequest) (*resource.ReadResponse, error) {
	defer p.enter()()
	if err := p.behave(req.Name); err != nil {
		return nil, err
	}
	return &resource.ReadResponse{Exists: true, Outputs: resource.Values{JSON: []byte(`{"read":"` + req.Name + `"}`)}}, nil
}

// withoutBatches is a plugin built before batches: it has Plan and Read
// only, and answers UNIMPLEMENTED to the rest.
type withoutBatches struct {
	resourcev1.UnimplementedProviderServiceServer
	s *grpcServer
}

func (w withoutBatches) Plan(ctx context.Context, req *resourcev1.PlanRequest) (*resourcev1.PlanResponse, error) {
	return w.s.Plan(ctx, req)
}

func (w withoutBatches) Read(ctx context.Context, req *resourcev1.ReadRequest) (*resourcev1.ReadResponse, error) {
	return w.s.Read(ctx, req)
}

// serveOver serves srv on a Unix socket and returns the engine's side.
func serveOver(t *testing.T, srv resourcev1.ProviderServiceServer) *grpcClient {
	t.Helper()
	dir, err := os.MkdirTemp("", "landscaper-batch-")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer(serverOptions()...)
	resourcev1.RegisterProviderServiceServer(server, srv)
	go func() { _ = server.Serve(ln) }()
	conn, err := grpc.NewClient("unix://"+ln.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		server.Stop()
		_ = os.RemoveAll(dir)
	})
	return newGRPCClient(conn)
}

func batchNames() []string {
	var names []string
	for i := range 300 {
		name := fmt.Sprintf("r-%d", i)
		switch i % 50 {
		case 7:
			name = fmt.Sprintf("fail-%d", i)
		case 11:
			name = fmt.Sprintf("panic-%d", i)
		case 13:
			name = fmt.Sprintf("slow-%d", i)
		}
		names = append(names, name)
	}
	return names
}

// TestBatches: PlanBatch and ReadBatch answer every request exactly once,
// as Plan and Read would (a failed call an error naming it, a panic an
// error diagnostic naming the resource), with at most the parallelism
// asked for running at once; a request too large to send is answered
// without being sent; and a plugin without batches is served by single
// calls.
func TestBatches(t *testing.T) {
	tests := []struct {
		name        string
		batches     bool
		parallelism int
	}{
		{"batches", true, 4},
		{"batches, one at a time", true, 1},
		{"a plugin without batches", false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			impl := &batchProvider{}
			server := &grpcServer{impl: impl, logger: hclog.NewNullLogger()}
			var c *grpcClient
			if tt.batches {
				c = serveOver(t, server)
			} else {
				c = serveOver(t, withoutBatches{s: server})
			}
			names := batchNames()
			big := len(names)
			names = append(names, "big")
			var plans []resource.PlanRequest
			var reads []resource.ReadRequest
			for i, n := range names {
				// Padded, so that the requests make several batches.
				desired := resource.Values{JSON: []byte(`{"pad":"` + strings.Repeat("p", 4096) + `"}`)}
				if i == big {
					desired.JSON = []byte(`{"x":"` + strings.Repeat("a", MaxMessageSize) + `"}`)
				}
				plans = append(plans, resource.PlanRequest{Type: "t.t", Name: n, Desired: desired})
				reads = append(reads, resource.ReadRequest{Type: "t.t", Name: n, Prior: resource.State{Inputs: desired}})
			}
			check := func(call string, i int, outputs []byte, diags resource.Diagnostics, err error) error {
				name := names[i]
				switch {
				case i == big:
					if err != nil || !strings.Contains(errorText(diags), "request too large") {
						return fmt.Errorf("%s %s: want a request-too-large diagnostic, got %v, %v", call, name, diags, err)
					}
				case strings.HasPrefix(name, "fail-"):
					if err == nil || !strings.Contains(err.Error(), "cannot plan "+name) {
						return fmt.Errorf("%s %s: want the provider's error, got %v", call, name, err)
					}
				case strings.HasPrefix(name, "panic-"):
					if err != nil || !strings.Contains(errorText(diags), "provider panicked during "+call+" of "+name) {
						return fmt.Errorf("%s %s: want a panic diagnostic, got %v, %v", call, name, diags, err)
					}
				default:
					if err != nil || !strings.Contains(string(outputs), `"`+name+`"`) {
						return fmt.Errorf("%s %s: got outputs %s, error %v", call, name, outputs, err)
					}
				}
				return nil
			}
			var mu sync.Mutex
			var errs []error
			seen := map[string]int{}
			c.PlanBatch(context.Background(), plans, tt.parallelism, func(i int, resp *resource.PlanResponse, err error) {
				mu.Lock()
				defer mu.Unlock()
				seen["plan "+names[i]]++
				var out []byte
				var diags resource.Diagnostics
				if resp != nil {
					out, diags = resp.PlannedOutputs, resp.Diagnostics
				}
				if e := check("plan", i, out, diags, err); e != nil {
					errs = append(errs, e)
				}
			})
			c.ReadBatch(context.Background(), reads, tt.parallelism, func(i int, resp *resource.ReadResponse, err error) {
				mu.Lock()
				defer mu.Unlock()
				seen["read "+names[i]]++
				var out []byte
				var diags resource.Diagnostics
				if resp != nil {
					out, diags = resp.Outputs.JSON, resp.Diagnostics
				}
				if e := check("read", i, out, diags, err); e != nil {
					errs = append(errs, e)
				}
			})
			if err := errors.Join(errs...); err != nil {
				t.Error(err)
			}
			for _, call := range []string{"plan", "read"} {
				for _, n := range names {
					if seen[call+" "+n] != 1 {
						t.Errorf("%s %s answered %d times, want once", call, n, seen[call+" "+n])
					}
				}
			}
			if got, want := impl.calls.Load(), int64(2*(len(names)-1)); got != want {
				t.Errorf("the provider was called %d times, want %d (the oversized request is not sent)", got, want)
			}
			if most := impl.most.Load(); most > int64(tt.parallelism) {
				t.Errorf("%d calls ran at once, more than the parallelism %d", most, tt.parallelism)
			}
			if got := c.noBatch.Load(); got == tt.batches {
				t.Errorf("the client takes the plugin for one without batches: %v, want %v", got, !tt.batches)
			}
		})
	}
}

// TestBatchCancelled: a batch cancelled half way answers every request,
// those not done with the cancellation.
func TestBatchCancelled(t *testing.T) {
	impl := &batchProvider{}
	c := serveOver(t, &grpcServer{impl: impl, logger: hclog.NewNullLogger()})
	var reqs []resource.PlanRequest
	for i := range 100 {
		reqs = append(reqs, resource.PlanRequest{Type: "t.t", Name: fmt.Sprintf("slow-%d", i), Desired: resource.Values{JSON: []byte(`{}`)}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var answered, failed atomic.Int64
	c.PlanBatch(ctx, reqs, 2, func(i int, resp *resource.PlanResponse, err error) {
		if answered.Add(1) == 3 {
			cancel()
		}
		if err != nil {
			failed.Add(1)
		}
	})
	if answered.Load() != int64(len(reqs)) {
		t.Errorf("%d of %d requests answered", answered.Load(), len(reqs))
	}
	if failed.Load() == 0 {
		t.Error("no request failed after the batch was cancelled")
	}
}

func errorText(ds resource.Diagnostics) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Summary+": "+d.Detail)
	}
	return strings.Join(parts, "; ")
}
