package cli

import (
	"strings"
	"testing"
)

// TestTimeoutFlags: --operation-timeout and --call-timeout must be
// positive durations; anything else is a usage error (exit 2) that names
// the flag, before any deployment is read.
func TestTimeoutFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--operation-timeout", "0s"}, "--operation-timeout must be positive, got 0s"},
		{[]string{"apply", "--auto-approve", "--call-timeout", "-1m"}, "--call-timeout must be positive, got -1m0s"},
		{[]string{"destroy", "--auto-approve", "--operation-timeout", "-5s"}, "--operation-timeout must be positive, got -5s"},
		{[]string{"plan", "--call-timeout", "soon"}, `invalid value "soon" for flag -call-timeout`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr syncBuffer
			if code := Main(tc.args, testEnv(&stderr)); code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}
