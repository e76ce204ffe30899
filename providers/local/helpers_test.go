package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/local"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	return sdktest.New(t, local.Provider())
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// validate runs Validate and returns its diagnostics.
func validate(t *testing.T, h *sdktest.Harness, typ string, inputs any, unknown ...resource.Path) resource.Diagnostics {
	t.Helper()
	diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: typ, Name: "test", Inputs: resource.Values{JSON: h.JSON(inputs)}, Unknown: unknown})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return diags
}

// hasErrorAt reports whether diags has an error at the attribute path
// (written as Path.String writes it) whose text contains want.
func hasErrorAt(diags resource.Diagnostics, path, want string) bool {
	for _, d := range diags {
		if d.Severity == resource.SeverityError && d.Attribute.String() == path && strings.Contains(d.String(), want) {
			return true
		}
	}
	return false
}

func plannedOutputs(t *testing.T, r *resource.PlanResponse) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal(r.PlannedOutputs, &m); err != nil {
		t.Fatalf("decode planned outputs %s: %v", r.PlannedOutputs, err)
	}
	return m
}

func pathStrings(ps []resource.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// waitForPid waits for a command to write its pid to file.
func waitForPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(file)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file %s: %v", file, err)
			}
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s after 10s", file)
	return 0
}

// processGone reports whether pid ends (or is a zombie nobody reaps yet)
// within a few seconds.
func processGone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			// The state follows the parenthesised command name.
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
