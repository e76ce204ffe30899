package providerset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testprovider"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// The tests here start the real testkit provider binary and make it
// misbehave: hang in an operation (honouring cancellation or not), never
// answer plan or read, never finish starting, or die.

var (
	buildOnce sync.Once
	testkit   string
	buildErr  error
	buildOut  []byte
)

// testkitBinary builds the testkit provider once per test process.
func testkitBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "providerset-test-")
		if err != nil {
			buildErr = err
			return
		}
		testkit = filepath.Join(dir, BinaryPrefix+"testkit")
		cmd := exec.Command("go", "build", "-o", testkit, "./landscaper/internal/testprovider/cmd/landscaper-provider-testkit")
		cmd.Dir = testbin.Root(t)
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build the testkit provider: %v\n%s", buildErr, buildOut)
	}
	return testkit
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testkit != "" {
		os.RemoveAll(filepath.Dir(testkit))
	}
	os.Exit(code)
}

// hangGuard bounds every call in these tests: a call still running then
// is a hang, and fails the test. It is no timing assertion.
const hangGuard = time.Minute

// guarded runs f, failing the test if it has not returned within
// hangGuard.
func guarded(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("%s still runs after %s", what, hangGuard)
		return nil
	}
}

func itemInputs(t *testing.T, path, behaviour string) resource.Values {
	t.Helper()
	b, err := json.Marshal(map[string]any{"path": path, "behaviour": behaviour, "delayMs": 0})
	if err != nil {
		t.Fatal(err)
	}
	return resource.Values{JSON: b}
}

// newSet starts a set with the testkit provider under short timeouts.
func newSet(t *testing.T, timeouts Timeouts) (*Set, resource.Provider) {
	t.Helper()
	s := New(nil)
	s.SetTimeouts(timeouts)
	t.Cleanup(s.Close)
	if err := guarded(t, "start testkit", func() error {
		_, err := s.Add(context.Background(), "testkit", testkitBinary(t))
		return err
	}); err != nil {
		t.Fatalf("start testkit: %v", err)
	}
	p, err := s.Provider("testkit")
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// TestTimeouts: a call that does not finish within its timeout fails with
// a TimeoutError naming the provider, the call and the timeout, whether
// the provider honours the cancellation or not, and the provider still
// serves other calls afterwards.
func TestTimeouts(t *testing.T) {
	short := Timeouts{Operation: time.Second, Call: time.Second}
	tests := []struct {
		name      string
		behaviour string
		call      func(ctx context.Context, p resource.Provider, in resource.Values) error
		want      TimeoutError
	}{
		{
			name: "create hangs until cancelled", behaviour: testprovider.BehaviourHang,
			call: func(ctx context.Context, p resource.Provider, in resource.Values) error {
				_, err := p.Create(ctx, resource.CreateRequest{Type: "testkit.item", Name: "x", Inputs: in}, nil)
				return err
			},
			want: TimeoutError{Provider: "testkit", Call: "create", After: time.Second, Kind: "operation"},
		},
		{
			name: "create ignores cancellation", behaviour: testprovider.BehaviourStuck,
			call: func(ctx context.Context, p resource.Provider, in resource.Values) error {
				_, err := p.Create(ctx, resource.CreateRequest{Type: "testkit.item", Name: "x", Inputs: in}, nil)
				return err
			},
			want: TimeoutError{Provider: "testkit", Call: "create", After: time.Second, Kind: "operation"},
		},
		{
			name: "update ignores cancellation", behaviour: testprovider.BehaviourStuck,
			call: func(ctx context.Context, p resource.Provider, in resource.Values) error {
				_, err := p.Update(ctx, resource.UpdateRequest{Type: "testkit.item", Name: "x", Prior: resource.State{Inputs: in}, Inputs: in}, nil)
				return err
			},
			want: TimeoutError{Provider: "testkit", Call: "update", After: time.Second, Kind: "operation"},
		},
		{
			name: "plan never answers", behaviour: testprovider.BehaviourHangPlan,
			call: func(ctx context.Context, p resource.Provider, in resource.Values) error {
				_, err := p.Plan(ctx, resource.PlanRequest{Type: "testkit.item", Name: "x", Desired: in})
				return err
			},
			want: TimeoutError{Provider: "testkit", Call: "plan", After: time.Second, Kind: "call"},
		},
		{
			name: "read never answers", behaviour: testprovider.BehaviourHangRead,
			call: func(ctx context.Context, p resource.Provider, in resource.Values) error {
				_, err := p.Read(ctx, resource.ReadRequest{Type: "testkit.item", Name: "x", Prior: resource.State{Inputs: in}})
				return err
			},
			want: TimeoutError{Provider: "testkit", Call: "read", After: time.Second, Kind: "call"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, p := newSet(t, short)
			dir := t.TempDir()
			err := guarded(t, tc.name, func() error {
				return tc.call(context.Background(), p, itemInputs(t, filepath.Join(dir, "hanging"), tc.behaviour))
			})
			var te *TimeoutError
			if !errors.As(err, &te) || *te != tc.want {
				t.Fatalf("err = %v, want %v", err, &tc.want)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a TimeoutError should be a context.DeadlineExceeded: %v", err)
			}
			for _, s := range []string{"testkit", tc.want.Call, "1s", tc.want.Kind + " timeout"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			// The provider still serves others.
			path := filepath.Join(dir, "after")
			if err := guarded(t, "create after the timeout", func() error {
				_, err := p.Create(context.Background(), resource.CreateRequest{Type: "testkit.item", Name: "after", Inputs: itemInputs(t, path, testprovider.BehaviourOK)}, nil)
				return err
			}); err != nil {
				t.Fatalf("create after the timeout: %v", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("create after the timeout wrote nothing: %v", err)
			}
		})
	}
}

// TestInterruptedCall: cancelling the context of a call to a provider that
// ignores cancellation returns at once with context.Canceled, not a
// timeout.
func TestInterruptedCall(t *testing.T) {
	t.Parallel()
	_, p := newSet(t, Timeouts{})
	ctx, cancel := context.WithCancel(context.Background())
	in := itemInputs(t, filepath.Join(t.TempDir(), "stuck"), testprovider.BehaviourStuck)
	err := guarded(t, "an interrupted create", func() error {
		go func() {
			time.Sleep(200 * time.Millisecond)
			cancel()
		}()
		_, err := p.Create(ctx, resource.CreateRequest{Type: "testkit.item", Name: "x", Inputs: in}, nil)
		return err
	})
	var te *TimeoutError
	if !errors.Is(err, context.Canceled) || errors.As(err, &te) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestStartFailures: a provider that never completes its handshake, never
// answers GetSchema, or dies while starting fails Add with an error that
// says so (with its last stderr lines when it died), within the call
// timeout.
func TestStartFailures(t *testing.T) {
	tests := []struct {
		start string
		want  []string
	}{
		{start: testprovider.StartHang, want: []string{"testkit", "timeout while waiting for plugin to start"}},
		{start: testprovider.StartHangSchema, want: []string{"testkit", "get schema did not finish within 2s (the call timeout)"}},
		{start: testprovider.StartExit, want: append([]string{"testkit", "exited before the plugin handshake", "last lines of its stderr"}, testprovider.DyingWords...)},
	}
	for _, tc := range tests {
		t.Run(tc.start, func(t *testing.T) {
			t.Setenv(testprovider.StartEnv, tc.start)
			s := New(nil)
			s.SetTimeouts(Timeouts{Call: 2 * time.Second})
			t.Cleanup(s.Close)
			err := guarded(t, "Add", func() error {
				_, err := s.Add(context.Background(), "testkit", testkitBinary(t))
				return err
			})
			if err == nil {
				t.Fatal("Add succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestProviderDiesMidCall: a provider that exits while planning is
// reported as exited, with its last stderr lines, and is started again for
// the next call.
func TestProviderDiesMidCall(t *testing.T) {
	t.Parallel()
	s, p := newSet(t, Timeouts{})
	dir := t.TempDir()
	err := guarded(t, "plan", func() error {
		_, err := p.Plan(context.Background(), resource.PlanRequest{Type: "testkit.item", Name: "x", Desired: itemInputs(t, filepath.Join(dir, "dies"), testprovider.BehaviourExitPlan)})
		return err
	})
	if err == nil {
		t.Fatal("plan of a dying provider succeeded")
	}
	for _, w := range append([]string{"testkit", "exited unexpectedly", "last lines of its stderr"}, testprovider.DyingWords...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
	if err := guarded(t, "plan after the crash", func() error {
		_, err := p.Plan(context.Background(), resource.PlanRequest{Type: "testkit.item", Name: "y", Desired: itemInputs(t, filepath.Join(dir, "fine"), testprovider.BehaviourOK)})
		return err
	}); err != nil {
		t.Fatalf("plan after the crash: %v", err)
	}
	if n := s.Started(); n != 2 {
		t.Errorf("started %d provider processes, want 2 (one again after the crash)", n)
	}
}

// TestBatchTimeout: in a batch of plans or reads, a request the provider
// never answers fails with a TimeoutError once no answer has come within
// the call timeout; the others are answered as usual.
func TestBatchTimeout(t *testing.T) {
	for _, call := range []string{"plan", "read"} {
		t.Run(call, func(t *testing.T) {
			t.Parallel()
			_, p := newSet(t, Timeouts{Operation: time.Second, Call: time.Second})
			b, ok := p.(resource.Batcher)
			if !ok {
				t.Fatal("the set's provider does not take batches")
			}
			dir := t.TempDir()
			errs := make([]error, 6)
			answered := make([]bool, 6)
			hang := map[string]string{"plan": testprovider.BehaviourHangPlan, "read": testprovider.BehaviourHangRead}[call]
			inputs := func(i int) resource.Values {
				behaviour := testprovider.BehaviourOK
				if i == 4 {
					behaviour = hang
				}
				return itemInputs(t, filepath.Join(dir, fmt.Sprint(i)), behaviour)
			}
			_ = guarded(t, "batch", func() error {
				if call == "plan" {
					var reqs []resource.PlanRequest
					for i := range errs {
						reqs = append(reqs, resource.PlanRequest{Type: "testkit.item", Name: fmt.Sprint("m", i), Desired: inputs(i)})
					}
					b.PlanBatch(context.Background(), reqs, 2, func(i int, _ *resource.PlanResponse, err error) { answered[i], errs[i] = true, err })
				} else {
					var reqs []resource.ReadRequest
					for i := range errs {
						reqs = append(reqs, resource.ReadRequest{Type: "testkit.item", Name: fmt.Sprint("m", i), Prior: resource.State{Inputs: inputs(i)}})
					}
					b.ReadBatch(context.Background(), reqs, 2, func(i int, _ *resource.ReadResponse, err error) { answered[i], errs[i] = true, err })
				}
				return nil
			})
			for i, err := range errs {
				if !answered[i] {
					t.Errorf("request %d not answered", i)
					continue
				}
				var te *TimeoutError
				if i == 4 {
					if want := (TimeoutError{Provider: "testkit", Call: call, After: time.Second, Kind: "call"}); !errors.As(err, &te) || *te != want {
						t.Errorf("the request never answered: err = %v, want %v", err, &want)
					}
				} else if err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
		})
	}
}
