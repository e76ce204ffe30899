package bootserver

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHTTPContentLengthAndRange(t *testing.T) {
	f := newFixture(t, nil)
	initrd := randomBytes(1_000_000, 10)
	v := f.putEntry(testMAC, []byte("kernel"), [][]byte{[]byte("first"), initrd}, "", []byte("extra archive"))
	url := f.httpBase() + versionFileName(v.MAC, v.ID, "initrd/1")

	resp, body := httpGet(t, url, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(initrd)) || !bytes.Equal(body, initrd) {
		t.Fatalf("GET: %s, Content-Length %d, %d bytes; want 200, %d", resp.Status, resp.ContentLength, len(body), len(initrd))
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(initrd)) {
		t.Errorf("Content-Length header %q", cl)
	}

	resp, body = httpGet(t, url, http.Header{"Range": {"bytes=1000-1999"}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, initrd[1000:2000]) {
		t.Errorf("range: %s, %d bytes; want 206 with bytes 1000-1999", resp.Status, len(body))
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 1000-1999/1000000" {
		t.Errorf("Content-Range %q", cr)
	}
	resp, body = httpGet(t, url, http.Header{"Range": {"bytes=-10"}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, initrd[len(initrd)-10:]) {
		t.Errorf("suffix range: %s, %q", resp.Status, body)
	}
	resp, _ = httpGet(t, url, http.Header{"Range": {"bytes=2000000-"}})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %s, want 416", resp.Status)
	}

	head, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK || head.ContentLength != int64(len(initrd)) {
		t.Errorf("HEAD: %s, Content-Length %d", head.Status, head.ContentLength)
	}

	// The extra archive goes only to the client that fetched the
	// machine's script: this one.
	if resp, _ := httpGet(t, f.httpBase()+"machine/52-54-00-12-34-56.ipxe", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the machine's script: %s", resp.Status)
	}
	for name, want := range map[string][]byte{
		versionFileName(v.MAC, v.ID, "kernel"):     []byte("kernel"),
		versionFileName(v.MAC, v.ID, "initrd/0"):   []byte("first\x00\x00\x00"), // padded to 4 bytes
		versionFileName(v.MAC, v.ID, "extra.cpio"): []byte("extra archive"),
		"ipxe.efi":      ipxeBinaryContent("ipxe.efi"),
		"undionly.kpxe": ipxeBinaryContent("undionly.kpxe"),
	} {
		resp, body := httpGet(t, f.httpBase()+name, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) || resp.ContentLength != int64(len(want)) {
			t.Errorf("%s: %s %q", name, resp.Status, body)
		}
	}

	post, err := http.Post(f.httpBase()+"boot.ipxe", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", post.Status)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t, nil)
	v := f.putEntry(testMAC, []byte("kernel"), [][]byte{[]byte("initrd")}, "", nil)
	for _, name := range []string{
		"",
		"pxelinux.0",
		"machine/not-a-mac.ipxe",
		versionFileName(v.MAC, v.ID, "initrd/1"), // only one initrd
		versionFileName(v.MAC, v.ID, "extra.cpio"), // no extra archive
		versionFileName(v.MAC, v.ID, "initrd/00"),  // not canonical
		versionFileName(v.MAC, v.ID, "entry.json"), // not served
		versionFileName(v.MAC, "0123456789abcdef0123", "kernel"),
		versionFileName("52:54:00:00:00:01", v.ID, "kernel"),
		"v/" + v.ID + "/kernel",
	} {
		if _, _, err := tftpGet(f.tftpAddr(), name, 0, false); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("TFTP %q: err = %v, want file not found", name, err)
		}
		if resp, _ := httpGet(t, f.httpBase()+name, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("HTTP %q: %s, want 404", name, resp.Status)
		}
	}
}

func TestEntryChangesWithoutRestart(t *testing.T) {
	f := newFixture(t, nil)
	script := func() string {
		t.Helper()
		resp, body := httpGet(t, f.httpBase()+"machine/52-54-00-12-34-56.ipxe", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("script: %s", resp.Status)
		}
		tftpBody, _, err := tftpGet(f.tftpAddr(), "machine/525400123456.ipxe", 0, true)
		if err != nil || !bytes.Equal(tftpBody, body) {
			t.Fatalf("script over TFTP differs from HTTP: %v\n%s\n---\n%s", err, tftpBody, body)
		}
		return string(body)
	}
	if s := script(); !strings.Contains(s, "no boot entry") {
		t.Fatalf("before any entry:\n%s", s)
	}

	v1 := f.putEntry(testMAC, []byte("kernel one"), [][]byte{[]byte("initrd one")}, "generation=1", nil)
	if s := script(); !strings.Contains(s, v1.ID) || !strings.Contains(s, "generation=1") {
		t.Fatalf("after the first entry:\n%s", s)
	}

	v2 := f.putEntry(testMAC, []byte("kernel two"), [][]byte{[]byte("initrd two")}, "generation=2", nil)
	s := script()
	if !strings.Contains(s, v2.ID) || strings.Contains(s, v1.ID) || !strings.Contains(s, "generation=2") {
		t.Fatalf("after the change:\n%s", s)
	}
	// A machine that fetched the first script while the entry changed
	// still gets the first version's files.
	for name, want := range map[string]string{
		versionFileName(v1.MAC, v1.ID, "kernel"):   "kernel one",
		versionFileName(v1.MAC, v1.ID, "initrd/0"): "initrd one\x00\x00", // padded to 4 bytes
		versionFileName(v2.MAC, v2.ID, "kernel"):   "kernel two",
		versionFileName(v2.MAC, v2.ID, "initrd/0"): "initrd two\x00\x00",
	} {
		if resp, body := httpGet(t, f.httpBase()+name, nil); resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("%s: %s %q, want %q", name, resp.Status, body, want)
		}
	}

	if err := f.store.Delete(testMAC); err != nil {
		t.Fatal(err)
	}
	if s := script(); !strings.Contains(s, "no boot entry") || strings.Contains(s, "kernel") {
		t.Fatalf("after delete:\n%s", s)
	}
	if resp, _ := httpGet(t, f.httpBase()+versionFileName(v2.MAC, v2.ID, "kernel"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("kernel of a deleted entry: %s", resp.Status)
	}
}

// TestMetricsAddUp makes requests of every outcome and checks that the
// counters by outcome add up to the requests made.
func TestMetricsAddUp(t *testing.T) {
	f := newFixture(t, nil)
	kernel := randomBytes(10_000, 11)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	kernelName := versionFileName(v.MAC, v.ID, "kernel")

	want := map[string]int64{}
	tftpReq := func(name string, o outcome) {
		_, _, _ = tftpGet(f.tftpAddr(), name, 1468, true)
		want[reqSeries("tftp", o)]++
	}
	httpReq := func(name string, o outcome) {
		httpGet(t, f.httpBase()+name, nil)
		want[reqSeries("http", o)]++
	}
	tftpReq(kernelName, outcomeOK)
	tftpReq("boot.ipxe", outcomeOK)
	tftpReq("machine/52-54-00-00-00-99.ipxe", outcomeNoEntry)
	tftpReq("nothing", outcomeNotFound)
	tftpReq("../etc/passwd", outcomeBadRequest)
	httpReq(kernelName, outcomeOK)
	httpReq(kernelName, outcomeOK)
	httpReq("machine/52-54-00-00-00-99.ipxe", outcomeNoEntry)
	httpReq("nothing", outcomeNotFound)
	httpReq("a%2e%2e/b", outcomeBadRequest)

	eventually(t, 5*time.Second, "all requests counted", func() bool {
		m := f.scrape()
		return requests(m, "tftp") == 5 && requests(m, "http") == 5
	})
	m := f.scrape()
	for _, p := range protocols {
		for _, o := range outcomes {
			if s := reqSeries(p, o); m[s] != want[s] {
				t.Errorf("%s = %d, want %d", s, m[s], want[s])
			}
		}
	}
	if requests(m, "http") != 5 {
		t.Errorf("http requests = %d, want 5", requests(m, "http"))
	}
	if got := m[`landscaper_boot_sent_bytes_total{protocol="http"}`]; got < 2*int64(len(kernel)) {
		t.Errorf("http bytes = %d, want at least %d", got, 2*len(kernel))
	}
	if got := m[`landscaper_boot_sent_bytes_total{protocol="tftp"}`]; got < int64(len(kernel)+len(bootScript)) {
		t.Errorf("tftp bytes = %d", got)
	}
	if m["landscaper_boot_transfers_max"] != DefaultMaxTransfers {
		t.Errorf("transfers_max = %d", m["landscaper_boot_transfers_max"])
	}
	if n := strings.Count(f.logs.String(), `msg="boot request"`); n != 10 {
		t.Errorf("%d request log lines, want 10:\n%s", n, f.logs.String())
	}
	if !strings.Contains(f.logs.String(), "mac=52:54:00:00:00:99") || !strings.Contains(f.logs.String(), "outcome=no_entry") {
		t.Errorf("no log line for the machine without an entry:\n%s", f.logs.String())
	}
}

func TestServeReturnsAfterCancel(t *testing.T) {
	f := newFixture(t, nil)
	httpAddr, tftpAddr := f.srv.HTTPAddr().String(), f.tftpAddr()
	if _, _, err := tftpGet(tftpAddr, "boot.ipxe", 0, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Serve took %s to return", d)
	}
	if _, err := http.Get("http://" + httpAddr + "/boot.ipxe"); err == nil {
		t.Errorf("HTTP still answers after Serve returned")
	}
	c := newRawClient(t)
	c.sendTo(tftpAddr, packRRQ("boot.ipxe"))
	if p, err := c.read(500 * time.Millisecond); err == nil {
		t.Errorf("TFTP still answers after Serve returned: %+v", p)
	}
}

// TestServeDrains: a transfer still running when the grace period after
// cancel is over is cut off, and Serve returns.
func TestServeDrains(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.DrainTimeout = 500 * time.Millisecond
		c.TFTPTimeout = 300 * time.Millisecond
		c.TFTPRetries = 2
	})
	v := f.putEntry(testMAC, randomBytes(512*50, 12), nil, "", nil)
	c := newRawClient(t)
	c.sendTo(f.tftpAddr(), packRRQ(versionFileName(v.MAC, v.ID, "kernel")))
	if p, err := c.read(2 * time.Second); err != nil || p.op != opDATA {
		t.Fatalf("first block: %+v %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- f.stop() }()
	// Keep acknowledging slowly: the transfer lives past the grace period.
	for block := uint16(1); ctx.Err() == nil; block++ {
		c.send(packACK(block))
		p, err := c.read(2 * time.Second)
		if err != nil || p.op != opDATA {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 5*time.Second {
		t.Errorf("Serve returned after %s, want about the 500ms grace period", d)
	}
}
