package nixos_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// TestCopyWithUnusualTMPDIR: with TMPDIR naming a directory with a space
// or a per cent sign (which broke NIX_SSHOPTS when the copy ran OpenSSH),
// the closure copy reaches the stand-in host over the provider's own
// connection and the system is activated; nothing is left in TMPDIR. Not
// parallel: TMPDIR is the process's.
func TestCopyWithUnusualTMPDIR(t *testing.T) {
	sys := testhost.BuildSystem(t, testhost.System{Name: "tmpdir-v1"})
	for _, name := range []string{"with space", "per%cent", "plain"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, testhost.Options{})
			tmp := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp)
			st, diags, ev := f.create(t, systemType, f.systemInputs(sys, nil))
			if diags.HasError() {
				t.Fatalf("deploy with TMPDIR=%q: %v\nlog: %q", tmp, diags.Err(), ev.Logs)
			}
			if !f.host.HasPath(sys) {
				t.Errorf("the host's store lacks %s after the copy", sys)
			}
			if got := f.host.CurrentSystem(); got != sys {
				t.Errorf("current system %q, want %q", got, sys)
			}
			if got := outputString(t, st, "current"); got != sys {
				t.Errorf("output current = %q, want %q", got, sys)
			}
			if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
				t.Errorf("TMPDIR holds %d entries afterwards (%v)", len(entries), err)
			}
		})
	}
}
