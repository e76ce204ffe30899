package bootserver

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
)

const testMAC = "52:54:00:12:34:56"

func TestTFTPBlockSizes(t *testing.T) {
	f := newFixture(t, nil)
	kernel := randomBytes(3_000_001, 1)
	v := f.putEntry(testMAC, kernel, [][]byte{randomBytes(700_000, 2)}, "console=ttyS0", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	for _, blksize := range []int{512, 1428, 1468, 8192, 65464} {
		t.Run(fmt.Sprint(blksize), func(t *testing.T) {
			got, size, err := tftpGet(f.tftpAddr(), name, blksize, true)
			if err != nil {
				t.Fatalf("get %s: %v", name, err)
			}
			if size != int64(len(kernel)) {
				t.Errorf("tsize = %d, want %d", size, len(kernel))
			}
			if len(got) != len(kernel) || sum(got) != sum(kernel) {
				t.Errorf("got %d bytes (sha256 %s), want %d (sha256 %s)", len(got), sum(got), len(kernel), sum(kernel))
			}
		})
	}
	t.Run("no options", func(t *testing.T) {
		got, size, err := tftpGet(f.tftpAddr(), "/"+name, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if size != -1 {
			t.Errorf("tsize %d reported without being asked for", size)
		}
		if sum(got) != sum(kernel) {
			t.Errorf("content differs")
		}
	})
}

// TestTFTPBlockCounterRollover sends a file of more than 65535 blocks, so
// the 16-bit block number wraps around.
func TestTFTPBlockCounterRollover(t *testing.T) {
	if testing.Short() {
		t.Skip("34 MB over lock-step TFTP")
	}
	// 66,000 lock-step round trips: on a loaded machine (the VM tests run
	// next to this package in CI) the client can stall for seconds; this
	// test is about the counter, not about timeouts.
	f := newFixture(t, func(c *Config) { c.TFTPTimeout, c.TFTPRetries, c.TransferTimeout = 10*time.Second, 6, 10*time.Minute })
	const size = 65535*512 + 300_000 // 33.85 MB: the counter wraps once
	initrd := randomBytes(size, 3)
	v := f.putEntry(testMAC, []byte("kernel"), [][]byte{initrd}, "", nil)
	start := time.Now()
	got, tsize, err := tftpGet(f.tftpAddr(), versionFileName(v.MAC, v.ID, "initrd/0"), 512, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes in %s", len(got), time.Since(start))
	if tsize != size {
		t.Errorf("tsize = %d, want %d", tsize, size)
	}
	if len(got) != size || sum(got) != sum(initrd) {
		t.Fatalf("got %d bytes (sha256 %s), want %d (sha256 %s)", len(got), sum(got), size, sum(initrd))
	}
}

// TestTFTPSizeProbe plays EDK2's size probe: RRQ with tsize=0, read the
// OACK, answer ERROR 8. It must count as a probe, not a failure, and the
// download after it must work.
func TestTFTPSizeProbe(t *testing.T) {
	f := newFixture(t, nil)
	content := ipxeBinaryContent("snponly.efi")
	c := newRawClient(t)
	c.sendTo(f.tftpAddr(), packRRQ("snponly.efi", "tsize", "0", "blksize", "1468"))
	p, err := c.read(3 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.op != opOACK {
		t.Fatalf("got opcode %d, want OACK", p.op)
	}
	opts := oackOptions(p)
	if opts["tsize"] != fmt.Sprint(len(content)) || opts["blksize"] != "1468" {
		t.Errorf("OACK options %v, want tsize=%d blksize=1468", opts, len(content))
	}
	c.send(packERROR(8, "User aborted the transfer"))

	got, _, err := tftpGet(f.tftpAddr(), "snponly.efi", 1468, true)
	if err != nil || string(got) != string(content) {
		t.Fatalf("download after probe: %q, %v", got, err)
	}
	eventually(t, 5*time.Second, "two TFTP requests counted", func() bool { return requests(f.scrape(), "tftp") == 2 })
	m := f.scrape()
	if m[reqSeries("tftp", outcomeSizeProbe)] != 1 || m["landscaper_boot_tftp_size_probes_total"] != 1 {
		t.Errorf("size probes not counted: %v", m)
	}
	if m[reqSeries("tftp", outcomeFailed)] != 0 || m[reqSeries("tftp", outcomeOK)] != 1 {
		t.Errorf("want ok=1 failed=0: %v", m)
	}
	if !strings.Contains(f.logs.String(), "outcome=size_probe") {
		t.Errorf("no log line for the probe:\n%s", f.logs.String())
	}
}

func TestTFTPConcurrentTransfers(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxTransfers = 128 })
	kernel := randomBytes(200_000, 4)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			got, _, err := tftpGet(f.tftpAddr(), name, []int{512, 1468, 8192}[i%3], true)
			if err == nil && sum(got) != sum(kernel) {
				err = fmt.Errorf("transfer %d: content differs", i)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	eventually(t, 5*time.Second, "100 transfers counted", func() bool { return f.scrape()[reqSeries("tftp", outcomeOK)] == n })
	m := f.scrape()
	if requests(m, "tftp") != n || m[`landscaper_boot_sent_bytes_total{protocol="tftp"}`] != n*int64(len(kernel)) {
		t.Errorf("metrics: %v", m)
	}
}

// holdTransfer starts a transfer by hand, acknowledges its first block (a
// TFTP transfer takes a slot once its first packet is acknowledged) and
// nothing after, so it holds a slot until the server gives up or release
// is called. The file must be longer than one 512-byte block.
func holdTransfer(t *testing.T, addr, name string) (release func()) {
	t.Helper()
	c := newRawClient(t)
	c.sendTo(addr, packRRQ(name))
	p, err := c.read(3 * time.Second)
	if err != nil || p.op != opDATA || p.block != 1 {
		t.Fatalf("hold %s: got %+v, %v; want DATA block 1", name, p, err)
	}
	c.send(packACK(1))
	if p, err = c.read(3 * time.Second); err != nil || p.op != opDATA || p.block != 2 {
		t.Fatalf("hold %s: got %+v, %v; want DATA block 2", name, p, err)
	}
	return func() { c.send(packERROR(0, "done")) }
}

func TestTransferCap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxTransfers = 10; c.TFTPTimeout = 5 * time.Second })
	v := f.putEntry(testMAC, randomBytes(100_000, 5), nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	var releases []func()
	for range 10 {
		releases = append(releases, holdTransfer(t, f.tftpAddr(), name))
	}
	eventually(t, 5*time.Second, "10 transfers in flight", func() bool {
		return f.scrape()[`landscaper_boot_transfers_in_flight{protocol="tftp"}`] == 10
	})
	for range 5 {
		if _, _, err := tftpGet(f.tftpAddr(), name, 1468, true); err == nil || !strings.Contains(err.Error(), "busy") {
			t.Errorf("TFTP transfer beyond the cap: err = %v, want server busy", err)
		}
	}
	resp, _ := httpGet(t, f.httpBase()+name, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("HTTP transfer beyond the cap: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	for _, release := range releases {
		release()
	}
	eventually(t, 5*time.Second, "slots released", func() bool {
		return f.scrape()[`landscaper_boot_transfers_in_flight{protocol="tftp"}`] == 0
	})
	if _, _, err := tftpGet(f.tftpAddr(), name, 1468, true); err != nil {
		t.Errorf("transfer after the others ended: %v", err)
	}
	eventually(t, 5*time.Second, "all requests counted", func() bool {
		m := f.scrape()
		return requests(m, "tftp") == 16 && requests(m, "http") == 1
	})
	m := f.scrape()
	if m[reqSeries("tftp", outcomeBusy)] != 5 || m[`landscaper_boot_transfers_refused_total{protocol="tftp"}`] != 5 ||
		m[reqSeries("http", outcomeBusy)] != 1 || m[reqSeries("tftp", outcomeOK)] != 1 || m[reqSeries("tftp", outcomeFailed)] != 10 {
		t.Errorf("metrics: %v", m)
	}
}

// TestTFTPStalledClient: a client that asks for a file and never
// acknowledges anything does not hold up others, and its transfer ends on
// its own, after the retries.
func TestTFTPStalledClient(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.TFTPTimeout = 400 * time.Millisecond
		c.TFTPRetries = 4
	})
	v := f.putEntry(testMAC, randomBytes(50_000, 6), nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	start := time.Now()
	holdTransfer(t, f.tftpAddr(), name) // never released
	for range 5 {
		if _, _, err := tftpGet(f.tftpAddr(), name, 1468, true); err != nil {
			t.Fatalf("transfer beside the stalled one: %v", err)
		}
	}
	// The others finished while the stalled one still held its slot.
	m := f.scrape()
	if m[reqSeries("tftp", outcomeTimeout)] != 0 || m[`landscaper_boot_transfers_in_flight{protocol="tftp"}`] < 1 {
		t.Errorf("the stalled transfer ended before the others (after %s): %v", time.Since(start), m)
	}
	eventually(t, 10*time.Second, "the stalled transfer to end", func() bool {
		return f.scrape()[reqSeries("tftp", outcomeTimeout)] == 1
	})
	// 4 sends of 400ms each, plus backoff and a loaded machine.
	if d := time.Since(start); d < 1500*time.Millisecond || d > 6*time.Second {
		t.Errorf("the stalled transfer ended after %s, want after its 4 tries of 400ms", d)
	}
	if n := f.scrape()[`landscaper_boot_transfers_in_flight{protocol="tftp"}`]; n != 0 {
		t.Errorf("%d transfers still in flight", n)
	}
}

// TestTFTPSlowClientDeadline: a client that acknowledges every block, but
// slowly, is cut off at the transfer deadline.
func TestTFTPSlowClientDeadline(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.TransferTimeout = time.Second
		c.TFTPTimeout = 2 * time.Second
	})
	v := f.putEntry(testMAC, randomBytes(512*100, 7), nil, "", nil)
	c := newRawClient(t)
	start := time.Now()
	c.sendTo(f.tftpAddr(), packRRQ(versionFileName(v.MAC, v.ID, "kernel")))
	var last packet
	for time.Since(start) < 5*time.Second {
		p, err := c.read(3 * time.Second)
		if err != nil {
			t.Fatalf("after %s: %v", time.Since(start), err)
		}
		if p.op != opDATA {
			last = p
			break
		}
		time.Sleep(150 * time.Millisecond)
		c.send(packACK(p.block))
	}
	elapsed := time.Since(start)
	if last.op != opERROR || !strings.Contains(string(last.body), "deadline") {
		t.Fatalf("got %+v (%q), want an ERROR about the deadline", last, last.body)
	}
	if elapsed < 900*time.Millisecond || elapsed > 4*time.Second {
		t.Errorf("cut off after %s, want about 1s", elapsed)
	}
	eventually(t, 3*time.Second, "timeout counted", func() bool { return f.scrape()[reqSeries("tftp", outcomeTimeout)] == 1 })
}

func TestTFTPWriteRefused(t *testing.T) {
	f := newFixture(t, nil)
	c, err := tftp.NewClient(f.tftpAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(time.Second)
	c.SetRetries(1)
	for _, name := range []string{"boot.ipxe", "new.ipxe", "../written"} {
		if rf, err := c.Send(name, "octet"); err == nil {
			_, err = rf.ReadFrom(strings.NewReader("owned"))
			if err == nil {
				t.Errorf("write of %s accepted", name)
			}
		}
	}
	for _, dir := range []string{f.bootDir, f.ipxeDir, filepath.Dir(f.bootDir)} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), "written") || e.Name() == "new.ipxe" {
				t.Errorf("a write created %s", filepath.Join(dir, e.Name()))
			}
		}
	}
	if got, _, err := tftpGet(f.tftpAddr(), "boot.ipxe", 0, false); err != nil || string(got) != bootScript {
		t.Errorf("boot.ipxe after write attempts: %q, %v", got, err)
	}
	// Each refused write is logged and counted like any other request.
	eventually(t, 5*time.Second, "write requests counted", func() bool { return requests(f.scrape(), "tftp") == 4 })
	m := f.scrape()
	if m[reqSeries("tftp", outcomeBadRequest)] != 3 || m[reqSeries("tftp", outcomeOK)] != 1 {
		t.Errorf("metrics: %v", m)
	}
	if n := strings.Count(f.logs.String(), "write request refused"); n != 3 {
		t.Errorf("%d log lines for refused writes, want 3:\n%s", n, f.logs.String())
	}
}
