package eintr

import (
	"errors"
	"syscall"
	"testing"
)

func TestRetry(t *testing.T) {
	other := errors.New("other")
	tests := []struct {
		name  string
		errs  []error
		want  error
		calls int
	}{
		{"success", []error{nil}, nil, 1},
		{"an error", []error{other}, other, 1},
		{"interrupted, then success", []error{syscall.EINTR, syscall.EINTR, nil}, nil, 3},
		{"interrupted, then an error", []error{syscall.EINTR, syscall.ENOENT}, syscall.ENOENT, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := Retry(func() error {
				calls++
				return tc.errs[calls-1]
			})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) || calls != tc.calls {
				t.Errorf("Retry: %v after %d calls, want %v after %d", err, calls, tc.want, tc.calls)
			}
		})
	}
}
