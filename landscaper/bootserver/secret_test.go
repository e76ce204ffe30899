package bootserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// The two clients of these tests. The whole of 127/8 is loopback on
// Linux, so a client socket bound to 127.0.0.2 reaches the server on
// 127.0.0.1 from another source address, as a second machine would.
const (
	machineAddr  = "127.0.0.1"
	attackerAddr = "127.0.0.2"
)

// curlFetch fetches url with curl, its socket bound to the local address
// from (curl --interface), over TFTP or HTTP as the URL says. It returns
// the body and curl's error (nil only for a file received whole; an HTTP
// status of 400 or more is an error, --fail).
func curlFetch(t *testing.T, from, url string) ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: install Debian's curl (scripts/install-deps.sh installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "body")
	cmd := exec.CommandContext(ctx, "curl", "--silent", "--show-error", "--fail", "--interface", from,
		"--max-time", "30", "--output", out, url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	body, _ := os.ReadFile(out)
	if err != nil {
		return body, fmt.Errorf("curl --interface %s %s: %w: %s", from, url, err, strings.TrimSpace(stderr.String()))
	}
	return body, nil
}

// url is the URL of name on the fixture's server over protocol.
func (f *fixture) url(protocol, name string) string {
	if protocol == "tftp" {
		return "tftp://" + f.tftpAddr() + "/" + name
	}
	return f.httpBase() + name
}

// logLines returns the server's log lines that contain every one of subs.
func (f *fixture) logLines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		all := l != ""
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

func refusedSeries(protocol, reason string) string {
	return fmt.Sprintf("landscaper_boot_secret_refused_total{protocol=%q,reason=%q}", protocol, reason)
}

// readRecord reads a version's fetch record.
func readRecord(t *testing.T, v *bootentry.Version) *bootentry.FetchRecord {
	t.Helper()
	r, err := bootentry.ReadFetchRecord(v.FetchDir())
	if err != nil {
		t.Fatalf("read the fetch record: %v", err)
	}
	return r
}

// hasEvent reports whether the record holds an event of kind from addr.
func hasEvent(r *bootentry.FetchRecord, kind, addr string) bool {
	for _, ev := range r.Events {
		if ev.Kind == kind && ev.Address == addr {
			return true
		}
	}
	return false
}

// TestArchiveServedToOneClient: the machine fetches its script first; a
// second client (another source address) that fetches the script too and
// then asks for the extra archive is refused, over TFTP and over HTTP,
// and the refusal is logged as an alarm, counted, and written to the
// fetch record; the machine gets the archive whole, by either protocol
// (with --http-url the script comes over TFTP and the archive over HTTP).
func TestArchiveServedToOneClient(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		scriptBy, archiveBy   string
		wantStatus, wantError string
	}{
		{name: "tftp", scriptBy: "tftp", archiveBy: "tftp"},
		{name: "http", scriptBy: "http", archiveBy: "http"},
		{name: "script over tftp, archive over http", scriptBy: "tftp", archiveBy: "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			secret := randomBytes(70_000, 7) // more than one TFTP block
			v := f.putEntry(testMAC, []byte("kernel"), [][]byte{[]byte("initrd")}, "", secret)
			script := bootentry.ScriptPath(v.MAC)
			archive := versionFileName(v.MAC, v.ID, bootentry.ExtraName)

			if _, err := curlFetch(t, machineAddr, f.url(tc.scriptBy, script)); err != nil {
				t.Fatalf("the machine's script: %v", err)
			}
			// The second client may have the script (it holds no secret)
			// and the kernel, but not the archive.
			body, err := curlFetch(t, attackerAddr, f.url(tc.scriptBy, script))
			if err != nil || !bytes.Contains(body, []byte(v.ID)) {
				t.Fatalf("the script for the second client: %v\n%s", err, body)
			}
			if _, err := curlFetch(t, attackerAddr, f.url(tc.archiveBy, versionFileName(v.MAC, v.ID, "kernel"))); err != nil {
				t.Errorf("the kernel for the second client: %v", err)
			}
			for _, p := range []string{"tftp", "http"} {
				body, err := curlFetch(t, attackerAddr, f.url(p, archive))
				if err == nil || len(body) > 0 {
					t.Errorf("%s: the second client got the archive (%d bytes, %v)", p, len(body), err)
				}
				if p == "http" && err != nil && !strings.Contains(err.Error(), "403") {
					t.Errorf("http: the second client was refused with %v, want 403", err)
				}
			}
			got, err := curlFetch(t, machineAddr, f.url(tc.archiveBy, archive))
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("the machine did not get its archive whole: %d of %d bytes, %v", len(got), len(secret), err)
			}

			m := f.scrape()
			for _, p := range []string{"tftp", "http"} {
				if n := m[refusedSeries(p, refusedOtherClient)]; n != 1 {
					t.Errorf("%s = %d, want 1", refusedSeries(p, refusedOtherClient), n)
				}
				if n := m[reqSeries(p, outcomeRefused)]; n != 1 {
					t.Errorf("%s = %d, want 1", reqSeries(p, outcomeRefused), n)
				}
			}
			alarms := f.logLines("level=ERROR", "remote="+attackerAddr+":", "outcome=refused", "alarm=true", "claimed_by="+machineAddr, "refused=other_client")
			if len(alarms) != 2 {
				t.Errorf("%d alarm lines for the second client, want 2 (one per protocol):\n%s", len(alarms), f.logs.String())
			}
			if l := f.logLines("remote="+attackerAddr+":", script, "claimed_by="+machineAddr, "level=WARN"); len(l) != 1 {
				t.Errorf("the second client's script fetch is not logged as a warning naming the claimant:\n%s", f.logs.String())
			}
			// A TFTP transfer is logged once its last acknowledgement
			// came, which may be after curl has exited.
			eventually(t, 10*time.Second, "the machine's archive fetch logged as served", func() bool {
				return len(f.logLines("remote="+machineAddr+":", archive, "outcome=ok")) == 1
			})

			r := readRecord(t, v)
			if r.Claim == nil || r.Claim.Address != machineAddr || r.Claim.Protocol != tc.scriptBy {
				t.Fatalf("the record's claim is %+v, want %s over %s", r.Claim, machineAddr, tc.scriptBy)
			}
			for _, want := range []struct{ kind, addr string }{
				{bootentry.EventScript, attackerAddr},
				{bootentry.EventRefused, attackerAddr},
				{bootentry.EventServed, machineAddr},
			} {
				if !hasEvent(r, want.kind, want.addr) {
					t.Errorf("the record has no %s event of %s: %+v", want.kind, want.addr, r.Events)
				}
			}
			if hasEvent(r, bootentry.EventServed, attackerAddr) {
				t.Errorf("the record says the archive was served to %s: %+v", attackerAddr, r.Events)
			}
		})
	}
}

// TestArchiveRefusals: the archive is refused, with the reason logged,
// counted and written down, to a client when no client fetched the
// version's script, and to everyone (the machine too, but without an
// alarm) once the version is sealed.
func TestArchiveRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup runs before the requests: the record's state.
		setup func(t *testing.T, f *fixture, v *bootentry.Version)
		// from are the clients asking for the archive; all are refused.
		from   []string
		reason string
		// alarms is how many of the refusals are alarms (level ERROR).
		alarms int
	}{
		{
			name:   "nobody fetched the script",
			setup:  func(*testing.T, *fixture, *bootentry.Version) {},
			from:   []string{machineAddr, attackerAddr},
			reason: refusedUnclaimed,
			alarms: 2,
		},
		{
			name: "sealed after the machine had it",
			setup: func(t *testing.T, f *fixture, v *bootentry.Version) {
				if _, err := curlFetch(t, machineAddr, f.url("tftp", bootentry.ScriptPath(v.MAC))); err != nil {
					t.Fatal(err)
				}
				if _, err := curlFetch(t, machineAddr, f.url("tftp", versionFileName(v.MAC, v.ID, bootentry.ExtraName))); err != nil {
					t.Fatalf("before the seal the machine gets its archive: %v", err)
				}
				if err := bootentry.Seal(v.FetchDir(), time.Now()); err != nil {
					t.Fatal(err)
				}
			},
			from:   []string{machineAddr, attackerAddr},
			reason: refusedSealed,
			alarms: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			v := f.putEntry(testMAC, []byte("kernel"), [][]byte{[]byte("initrd")}, "", []byte("secret host key"))
			tc.setup(t, f, v)
			archive := versionFileName(v.MAC, v.ID, bootentry.ExtraName)
			for _, from := range tc.from {
				for _, p := range []string{"tftp", "http"} {
					if body, err := curlFetch(t, from, f.url(p, archive)); err == nil || len(body) > 0 {
						t.Errorf("%s over %s got the archive (%d bytes, %v)", from, p, len(body), err)
					}
				}
			}
			m := f.scrape()
			for _, p := range []string{"tftp", "http"} {
				if n := m[refusedSeries(p, tc.reason)]; n != int64(len(tc.from)) {
					t.Errorf("%s = %d, want %d", refusedSeries(p, tc.reason), n, len(tc.from))
				}
			}
			if n := len(f.logLines("outcome=refused", "refused="+tc.reason, "level=ERROR", "alarm=true")); n != 2*tc.alarms {
				t.Errorf("%d alarm lines, want %d:\n%s", n, 2*tc.alarms, f.logs.String())
			}
			r := readRecord(t, v)
			for _, from := range tc.from {
				if !hasEvent(r, bootentry.EventRefused, from) {
					t.Errorf("the record has no refusal of %s: %+v", from, r.Events)
				}
			}
		})
	}
}

// TestClaimLivesInTheBootDirectory: two servers on one boot directory (as
// with several `landscaper serve`, or one restarted) agree on who may
// have the archive: the machine fetched its script from the first, the
// second refuses the archive to another client and serves it to the
// machine.
func TestClaimLivesInTheBootDirectory(t *testing.T) {
	first := newFixture(t, nil)
	second := newFixture(t, func(c *Config) { c.BootDir = first.bootDir })
	v := first.putEntry(testMAC, []byte("kernel"), nil, "", []byte("secret host key"))
	if _, err := curlFetch(t, machineAddr, first.url("http", bootentry.ScriptPath(v.MAC))); err != nil {
		t.Fatal(err)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	archive := versionFileName(v.MAC, v.ID, bootentry.ExtraName)
	if body, err := curlFetch(t, attackerAddr, second.url("tftp", archive)); err == nil || len(body) > 0 {
		t.Errorf("the second server served the archive to %s (%d bytes, %v)", attackerAddr, len(body), err)
	}
	if body, err := curlFetch(t, machineAddr, second.url("tftp", archive)); err != nil || string(body) != "secret host key" {
		t.Errorf("the second server did not serve the machine its archive: %q, %v", body, err)
	}
	if n := second.scrape()[refusedSeries("tftp", refusedOtherClient)]; n != 1 {
		t.Errorf("the second server counts %d refusals to another client, want 1", n)
	}
}

// TestArchiveRefusedWhenRecordUnwritable: a server that cannot write the
// fetch record cannot tell who may have the archive, so nobody gets it;
// the script is still served, and the log says why.
func TestArchiveRefusedWhenRecordUnwritable(t *testing.T) {
	f := newFixture(t, nil)
	v := f.putEntry(testMAC, []byte("kernel"), nil, "", []byte("secret host key"))
	// A file where the record's directory should be: nothing can be
	// written there, whoever runs the test (root included).
	if err := os.Remove(v.FetchDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.FetchDir(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := curlFetch(t, machineAddr, f.url("http", bootentry.ScriptPath(v.MAC))); err != nil {
		t.Fatalf("the script is served even when the record cannot be written: %v", err)
	}
	body, err := curlFetch(t, machineAddr, f.url("http", versionFileName(v.MAC, v.ID, bootentry.ExtraName)))
	if err == nil || len(body) > 0 {
		t.Errorf("the archive was served without a record (%d bytes, %v)", len(body), err)
	}
	if n := f.scrape()[refusedSeries("http", refusedRecord)]; n != 1 {
		t.Errorf("%s = %d, want 1", refusedSeries("http", refusedRecord), n)
	}
	if l := f.logLines("fetch_record_error=", "level=ERROR", "machine/"); len(l) != 1 {
		t.Errorf("the script's log line does not say the record cannot be written:\n%s", f.logs.String())
	}
	if _, err := bootentry.ReadFetchRecord(v.FetchDir()); err == nil {
		t.Errorf("ReadFetchRecord of a file succeeded, want an error")
	}
}
