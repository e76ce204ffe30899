// Package policytest holds checks of the repository's own source against
// project policy, run with the other tests.
package policytest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// The patterns are built from pieces so that this file does not hold them
// whole (it is a test, and not scanned, but a copy of it elsewhere would
// be).
var insecureSSH = []struct {
	what string
	re   *regexp.Regexp
}{
	{
		what: "golang.org/x/crypto/ssh's host key callback that accepts any key",
		re:   regexp.MustCompile(`Insecure` + `IgnoreHostKey`),
	},
	{
		what: "OpenSSH told not to check host keys",
		// ssh -o Key=value, Key value in ssh_config, any case, quoted or not.
		re: regexp.MustCompile(`(?i)Strict` + `HostKeyChecking` + `["']?(\s*=\s*|\s+)["']?(no|off)\b`),
	},
	{
		what: "OpenSSH told to forget the host keys it learns",
		re:   regexp.MustCompile(`(?i)User` + `KnownHostsFile` + `["']?(\s*=\s*|\s+)["']?/dev/` + `null`),
	},
}

// violations returns "line: what" for every line of src that disables
// host key checking.
func violations(src []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		for _, p := range insecureSSH {
			if p.re.Match(sc.Bytes()) {
				out = append(out, fmt.Sprintf("%d: %s: %s", n, p.what, strings.TrimSpace(sc.Text())))
			}
		}
	}
	return out
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		line string
		want bool
	}{
		{"x/crypto/ssh", "HostKeyCallback: ssh." + "Insecure" + "IgnoreHostKey(),", true},
		{"ssh -o", `"-o", "Strict` + `HostKeyChecking=no",`, true},
		{"ssh -o lower case", "ssh -o strict" + "hostkeychecking=No host", true},
		{"ssh -o off", "-o Strict" + "HostKeyChecking=off", true},
		{"ssh_config", "  Strict" + "HostKeyChecking no", true},
		{"ssh_config quoted", `Strict` + `HostKeyChecking "no"`, true},
		{"spaces around =", "Strict" + "HostKeyChecking = no", true},
		{"known hosts to /dev/null", "-o User" + "KnownHostsFile=/dev/" + "null", true},
		{"known hosts to /dev/null, ssh_config", "User" + "KnownHostsFile /dev/" + "null", true},
		{"checking on", `"-o", "Strict` + `HostKeyChecking=yes",`, false},
		{"accept-new", "Strict" + "HostKeyChecking=accept-new", false},
		{"nothing after no", "Strict" + "HostKeyChecking=nothing", false},
		{"pinned known hosts", `"-o", "User` + `KnownHostsFile=" + knownHosts,`, false},
		{"no global known hosts", "-o Global" + "KnownHostsFile=/dev/" + "null", false},
		{"a fixed callback", "HostKeyCallback: ssh.FixedHostKey(key),", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(violations([]byte("first line\n"+tc.line+"\n"))) > 0; got != tc.want {
				t.Errorf("violations(%q) found = %v, want %v", tc.line, got, tc.want)
			}
		})
	}
}

// isCode reports whether a repository file is code the policy covers: Go
// outside tests, shell, Nix, Makefiles and scripts with a #! line.
func isCode(rel string, head []byte) bool {
	base := filepath.Base(rel)
	switch {
	case strings.HasSuffix(base, "_test.go"):
		return false
	case strings.HasSuffix(base, ".go"), strings.HasSuffix(base, ".sh"), strings.HasSuffix(base, ".nix"):
		return true
	case base == "Makefile" || strings.HasSuffix(base, ".mk"):
		return true
	}
	return bytes.HasPrefix(head, []byte("#!"))
}

// repositoryFiles lists the repository's files that git tracks or would
// track (new files not yet committed included, ignored ones not).
func repositoryFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("list the repository's files with git ls-files in %s: %v\n%s", root, err, stderr)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// TestNoInsecureSSH fails if code outside tests turns host key checking
// off: every SSH connection Landscaper makes must check the host key it
// pinned.
func TestNoInsecureSSH(t *testing.T) {
	root := testbin.Root(t)
	scanned := map[string]int{}
	seen := map[string]bool{}
	for _, rel := range repositoryFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatalf("read %s: %v", rel, err)
		}
		if !isCode(rel, data[:min(len(data), 2)]) {
			continue
		}
		ext := filepath.Ext(rel)
		if ext == "" {
			ext = filepath.Base(rel)
		}
		scanned[ext]++
		seen[filepath.ToSlash(rel)] = true
		for _, v := range violations(data) {
			t.Errorf("%s:%s", rel, v)
		}
	}
	t.Logf("scanned %v", scanned)

	// Not vacuous: the scan covered the kinds of code there are, and
	// files known to exist.
	minimum := map[string]int{".go": 50, ".sh": 3, ".nix": 2, "Makefile": 1}
	for ext, n := range minimum {
		if scanned[ext] < n {
			t.Errorf("scanned %d %s files, want at least %d", scanned[ext], ext, n)
		}
	}
	for _, f := range []string{"landscaper/cli/cli.go", "providers/nixos/remote/copy.go", "scripts/install-deps.sh", "examples/quickstart/landscaper.nix", "Makefile", ".ci/run"} {
		if !seen[f] {
			t.Errorf("%s was not scanned", f)
		}
	}
	if seen["landscaper/policytest/policy_test.go"] {
		t.Errorf("a test file was scanned")
	}
}
