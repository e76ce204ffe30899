package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testfs"
	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// faultDeployment has members a and b, and c when withC is set.
func faultDeployment(withC bool) string {
	d := `{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "out/a"; contents = "aye\n"; }; };
  members.b = { type = providers.local.file; inputs = { name = "out/b"; contents = "a: ${members.a.outputs.sha256}\n"; }; };
`
	if withC {
		d += `  members.c = { type = providers.local.file; inputs = { name = "out/c"; contents = "sea\n"; }; };
`
	}
	return d + "}\n"
}

// TestCorruptStateRefusedByCLI: with a truncated, corrupted or hand-edited
// state file, plan, apply, destroy and state list fail with a message
// naming the file, what is wrong with it and the backup of the last good
// state; the state file and the backup stay byte for byte as they were,
// and nothing is created or deleted.
func TestCorruptStateRefusedByCLI(t *testing.T) {
	t.Parallel()
	applied := t.TempDir()
	writeFile(t, applied, "landscaper.nix", faultDeployment(false))
	mustRun(t, applied, 0, "apply", "--auto-approve")
	// A second run that changes something leaves a backup of the first.
	writeFile(t, applied, "landscaper.nix", faultDeployment(true))
	mustRun(t, applied, 0, "apply", "--auto-approve")
	good := stateBytes(t, applied)
	backup, err := os.ReadFile(statePath(applied) + ".backup")
	if err != nil {
		t.Fatalf("no backup after the second apply: %v", err)
	}
	// What a run would do if it used the state: create c again, delete
	// nothing else.
	writeFile(t, applied, "landscaper.nix", faultDeployment(false))

	garbage := make([]byte, 400)
	for i := range garbage {
		garbage[i] = byte(i*151 + 7)
	}
	cases := []struct {
		name    string
		content []byte
		want    string
	}{
		{"truncated", good[:len(good)/2], "is truncated"},
		{"random bytes", garbage, "is not valid JSON"},
		{"invalid JSON", bytes.Replace(good, []byte(`"resources":{`), []byte(`"resources":{,`), 1), "is not valid JSON"},
		{"serial of the wrong type", regexp.MustCompile(`"serial":(\d+)`).ReplaceAll(good, []byte(`"serial":"$1"`)), `invalid value at "serial": a JSON string`},
		{"type of the wrong type", bytes.Replace(good, []byte(`"type":"local.file"`), []byte(`"type":7`), 1), `invalid value at "type" in resource`},
		{"unknown field", bytes.Replace(good, []byte(`{"version":1,`), []byte(`{"version":1,"colour":"red",`), 1), `unknown field "colour"`},
		{"misspelt field", bytes.Replace(good, []byte(`"lineage"`), []byte(`"Lineage"`), 1), `which should be spelled "lineage"`},
		{"lineage removed", bytes.Replace(good, []byte(`"lineage"`), []byte(`"lineage_"`), 1), `unknown field "lineage_"`},
		{"newer version", bytes.Replace(good, []byte(`{"version":1,`), []byte(`{"version":2,`), 1), "written by a newer landscaper"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.content, good) {
				t.Fatalf("test setup: %s does not change the state", tc.name)
			}
			dir := t.TempDir()
			copyDir(t, applied, dir)
			if err := os.WriteFile(statePath(dir), tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			files := snapshot(t, dir, "out")
			for _, args := range [][]string{
				{"plan"},
				{"apply", "--auto-approve"},
				{"destroy", "--auto-approve"},
				{"state", "list"},
			} {
				_, stderr, code := run(t, dir, args...)
				if code == 0 {
					t.Errorf("landscaper %s over a %s state: exit 0", strings.Join(args, " "), tc.name)
				}
				// The state is named as the command found it: relative to
				// the deployment.
				rel := filepath.Join(".landscaper", "state.json")
				for _, want := range []string{"state file " + rel + " ", tc.want, "refusing to use or overwrite it", "kept in " + rel + ".backup"} {
					if !strings.Contains(stderr, want) {
						t.Errorf("landscaper %s: stderr does not say %q:\n%s", strings.Join(args, " "), want, stderr)
					}
				}
				if got := stateBytes(t, dir); !bytes.Equal(got, tc.content) {
					t.Fatalf("landscaper %s changed the %s state file", strings.Join(args, " "), tc.name)
				}
				if got, _ := os.ReadFile(statePath(dir) + ".backup"); !bytes.Equal(got, backup) {
					t.Fatalf("landscaper %s changed the backup", strings.Join(args, " "))
				}
			}
			after := snapshot(t, dir, "out")
			if len(after) != len(files) {
				t.Errorf("files under out/ changed from %v to %v", keys(files), keys(after))
			}
			for name, snap := range files {
				if !untouched(t, dir, snap, name) {
					t.Errorf("%s was touched", name)
				}
			}
			// Restoring the backup by hand makes the deployment usable
			// again.
			if err := os.Rename(statePath(dir)+".backup", statePath(dir)); err != nil {
				t.Fatal(err)
			}
			if got := stateMembers(t, dir); !sameStrings(got, []string{"a", "b"}) {
				t.Errorf("the backup holds %v, want the state of the first apply: [a b]", got)
			}
		})
	}
}

// parseStateFile reads a state file with the parser the backends use.
func parseStateFile(t *testing.T, path string) *state.State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := state.Parse(b)
	if err != nil {
		t.Fatalf("the state %s does not parse: %v\n%s", path, err, b)
	}
	return s
}

func names[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestApplyWithStateOnFullDisk keeps the state on a small tmpfs that a
// member of the deployment fills while the apply runs: the apply fails
// with a message naming the state and the full disk; the state file still
// parses and holds everything recorded before the disk filled (the first
// apply's member, and the filler's pending record); the member that could
// not be recorded was not made; no temporary file is left. Once space is
// freed, the next apply finishes the deployment.
func TestApplyWithStateOnFullDisk(t *testing.T) {
	t.Parallel()
	stateDir := testfs.Tmpfs(t, 128<<10)
	stateFile := filepath.Join(stateDir, "state.json")
	filler := filepath.Join(stateDir, "filler")
	dir := t.TempDir()
	writeFile(t, dir, "landscaper.nix", `{ members, providers, ... }: {
  members.first = { type = providers.local.file; inputs = { name = "out/first"; contents = "first\n"; }; };
}
`)
	mustRun(t, dir, 0, "apply", "--auto-approve", "--state", stateFile)

	// fill fills the state's file system, once (a marker beside the
	// deployment says it did), and says "full".
	writeFile(t, dir, "landscaper.nix", fmt.Sprintf(`{ members, providers, ... }: {
  members.first = { type = providers.local.file; inputs = { name = "out/first"; contents = "first\n"; }; };
  members.fill = { type = providers.local.exec; inputs = { executable = "sh"; args = [ "-c" "if [ ! -e filled ]; then touch filled; cat /dev/zero > %s 2>/dev/null; fi; echo full" ]; }; };
  members.after = { type = providers.local.file; inputs = { name = "out/after"; contents = "fill said ${members.fill.outputs.stdout}"; }; };
}
`, filler))
	_, stderr, code := run(t, dir, "apply", "--auto-approve", "--state", stateFile)
	if code == 0 {
		t.Fatalf("apply with the state on a full disk: exit 0\n%s", stderr)
	}
	t.Logf("apply with the state on a full disk: exit %d\n%s", code, stderr)
	for _, want := range []string{stateFile, "no space left on device"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("apply on a full disk: stderr does not say %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filler); err != nil {
		t.Fatalf("the fill member did not fill the disk: %v", err)
	}
	s := parseStateFile(t, stateFile)
	if got := names(s.Resources); !slices.Contains(got, "first") || slices.Contains(got, "after") {
		t.Errorf("the state after the full disk records %v, want first (and not after)", got)
	}
	if !slices.Contains(names(s.Resources), "fill") && s.Pending["fill"] == nil {
		t.Errorf("the state records neither fill nor its pending create: %v, pending %v", names(s.Resources), names(s.Pending))
	}
	wantNoFile(t, dir, "out/after")
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"filler", "state.json", "state.json.backup", "state.json.lock"}; !reflect.DeepEqual(left, want) {
		t.Errorf("the state directory holds %v, want %v", left, want)
	}

	// Space freed: the next apply finishes, and then nothing is left to do.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, 0, "apply", "--auto-approve", "--state", stateFile)
	s = parseStateFile(t, stateFile)
	if got := names(s.Resources); !reflect.DeepEqual(got, []string{"after", "fill", "first"}) || len(s.Pending) != 0 {
		t.Errorf("after space was freed the state records %v (pending %v), want after, fill, first", got, names(s.Pending))
	}
	wantFile(t, dir, "out/after", "fill said full\n")
	mustRun(t, dir, 0, "plan", "--detailed-exitcode", "--state", stateFile)
}
