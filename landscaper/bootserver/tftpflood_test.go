package bootserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
)

// The tests in this file are about issue 17, item 4: TFTP requests from
// clients that never acknowledge anything (sockets that never read, or
// forged source addresses) must not hold transfer slots, one address must
// not take most of them, and real clients must keep booting while such
// requests keep coming. Every source address is on loopback: the whole of
// 127/8 is.

const (
	unacked        = "landscaper_boot_tftp_unacknowledged"
	unackedDropped = "landscaper_boot_tftp_unacknowledged_dropped_total"
	perAddrRefused = "landscaper_boot_tftp_refused_per_address_total"
)

// logLinesWith returns the server's log lines that contain sub.
func (f *fixture) logLinesWith(sub string) []string {
	var out []string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// newRawClientAt is newRawClient with its socket on the loopback address ip.
func newRawClientAt(t *testing.T, ip string) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn}
}

// stallAfterOACK asks for name with options from a socket on ip, reads the
// OACK and acknowledges nothing.
func stallAfterOACK(t *testing.T, addr, ip, name string) *rawClient {
	t.Helper()
	c := newRawClientAt(t, ip)
	c.sendTo(addr, packRRQ(name, "blksize", "1468", "tsize", "0"))
	if p, err := c.read(10 * time.Second); err != nil || p.op != opOACK {
		t.Fatalf("stall from %s: got %+v (%q), %v; want OACK", ip, p, p.body, err)
	}
	return c
}

// readUntilError reads what the server sends c until an ERROR, which it
// returns with the number of packets before it (retransmissions).
func readUntilError(t *testing.T, c *rawClient, timeout time.Duration) (errPacket packet, before []packet) {
	t.Helper()
	for {
		p, err := c.read(timeout)
		if err != nil {
			t.Fatalf("after %d packets (%+v): %v; want an ERROR", len(before), before, err)
		}
		if p.op == opERROR {
			return p, before
		}
		before = append(before, p)
	}
}

// getFrom fetches name with pin/tftp's client from a socket on ip.
func getFrom(addr, ip, name string) ([]byte, error) {
	c, err := tftp.NewClient(addr)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", addr, err)
	}
	if err := c.SetLocalAddr(ip); err != nil {
		return nil, fmt.Errorf("client on %s: %w", ip, err)
	}
	c.SetTimeout(5 * time.Second)
	c.SetRetries(3)
	c.SetBackoff(func(int) time.Duration { return 10 * time.Millisecond })
	c.SetBlockSize(1468)
	c.RequestTSize(true)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", name, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("receive %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// curlTFTP fetches url with curl (blksize 1468), a real TFTP client.
func curlTFTP(t *testing.T, url string) ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: install Debian's curl (scripts/install-deps.sh installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "body")
	cmd := exec.CommandContext(ctx, "curl", "--silent", "--show-error", "--tftp-blksize", "1468", "--max-time", "30", "--output", out, url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("curl %s: %w: %s", url, err, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}

// TestTFTPUnacknowledgedTransfersHoldNoSlot: transfers whose client never
// acknowledges the OACK hold no transfer slot (so a client beyond the
// slots is served meanwhile), send their first packet only
// TFTPFirstACKRetries times, and end as timeouts.
func TestTFTPUnacknowledgedTransfersHoldNoSlot(t *testing.T) {
	const maxTransfers = 4
	f := newFixture(t, func(c *Config) {
		c.MaxTransfers = maxTransfers
		c.TFTPMaxUnacknowledged = 2 * maxTransfers
		// Long enough that the stalled transfers still wait while the
		// test looks at them.
		c.TFTPTimeout = 5 * time.Second
		c.TFTPFirstACKTimeout = 3 * time.Second
		c.TFTPRetries = 3
		c.TFTPFirstACKRetries = 2
	})
	kernel := randomBytes(200_000, 60)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	before := measure(t)

	var stalled []*rawClient
	for i := range maxTransfers {
		stalled = append(stalled, stallAfterOACK(t, f.tftpAddr(), fmt.Sprintf("127.0.0.%d", 2+i), name))
	}
	m := f.scrape()
	if m[unacked] != maxTransfers || m[inFlightTFTP] != 0 {
		t.Errorf("with %d transfers waiting for their first ACK: %s = %d, %s = %d; want %d, 0", maxTransfers, unacked, m[unacked], inFlightTFTP, m[inFlightTFTP], maxTransfers)
	}
	// As many clients as there are slots, all served: the stalled
	// transfers hold none.
	for i := range maxTransfers {
		if got, err := getFrom(f.tftpAddr(), "127.0.0.1", name); err != nil || !bytes.Equal(got, kernel) {
			t.Fatalf("client %d beside the stalled transfers: %d bytes, %v", i, len(got), err)
		}
	}
	// Each stalled client got the OACK TFTPFirstACKRetries times in all,
	// then an ERROR, and its transfer ended as a timeout.
	for i, c := range stalled {
		e, before := readUntilError(t, c, 10*time.Second)
		if len(before) != 1 || before[0].op != opOACK {
			t.Errorf("stalled client %d: got %d more packets before the ERROR (%+v), want the OACK once more", i, len(before), before)
		}
		if !strings.Contains(string(e.body), "acknowledgement") {
			t.Errorf("stalled client %d: ERROR %q", i, e.body)
		}
	}
	eventually(t, 10*time.Second, "the stalled transfers counted", func() bool {
		return f.scrape()[reqSeries("tftp", outcomeTimeout)] == maxTransfers
	})
	m = f.scrape()
	if m[reqSeries("tftp", outcomeOK)] != maxTransfers || m[reqSeries("tftp", outcomeBusy)] != 0 || m[reqSeries("tftp", outcomeFailed)] != 0 || m[unacked] != 0 {
		t.Errorf("want %d ok and %d timeouts, nothing else, nothing waiting: %v", maxTransfers, maxTransfers, m)
	}
	checkReleased(t, "after the stalled transfers", before)
}

// TestTFTPDropsOldestUnacknowledged: when TFTPMaxUnacknowledged transfers
// wait for their first acknowledgement, a new request drops the oldest,
// whose client is told the server is busy; a real client gets through.
func TestTFTPDropsOldestUnacknowledged(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.TFTPMaxUnacknowledged = 3
		// Nothing ends on its own during the test.
		c.TFTPTimeout = time.Minute
		c.TFTPFirstACKTimeout = time.Minute
	})
	kernel := randomBytes(100_000, 61)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	var stalled []*rawClient
	for i := range 4 {
		stalled = append(stalled, stallAfterOACK(t, f.tftpAddr(), fmt.Sprintf("127.0.0.%d", 2+i), name))
	}
	if e, before := readUntilError(t, stalled[0], 10*time.Second); len(before) != 0 || !strings.Contains(string(e.body), errBusy.Error()) {
		t.Errorf("the oldest stalled client: %+v, then ERROR %q; want ERROR server busy at once", before, e.body)
	}
	if m := f.scrape(); m[unacked] != 3 || m[unackedDropped] != 1 {
		t.Errorf("%s = %d, %s = %d; want 3, 1", unacked, m[unacked], unackedDropped, m[unackedDropped])
	}
	// A real client drops the next oldest and gets the whole file.
	if got, err := getFrom(f.tftpAddr(), "127.0.0.1", name); err != nil || !bytes.Equal(got, kernel) {
		t.Fatalf("real client: %d bytes, %v", len(got), err)
	}
	if e, _ := readUntilError(t, stalled[1], 10*time.Second); !strings.Contains(string(e.body), errBusy.Error()) {
		t.Errorf("the second stalled client: ERROR %q, want server busy", e.body)
	}
	// The real transfer is counted once its last ACK is in, a moment
	// after the client has the file: wait for every count.
	eventually(t, 10*time.Second, "two dropped transfers and the real one counted", func() bool {
		m := f.scrape()
		return m[reqSeries("tftp", outcomeBusy)] == 2 && m[reqSeries("tftp", outcomeOK)] == 1
	})
	if m := f.scrape(); m[unackedDropped] != 2 || m[reqSeries("tftp", outcomeOK)] != 1 || m[unacked] != 2 {
		t.Errorf("want 2 dropped, 1 ok, 2 waiting: %v", m)
	}
}

// TestTFTPPerAddressCap: one address may have MaxTransfersPerAddress
// transfers, acknowledged or not; its next request is refused as busy,
// while other addresses are served.
func TestTFTPPerAddressCap(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.MaxTransfers = 8
		c.MaxTransfersPerAddress = 2
		// Nothing ends on its own during the test.
		c.TFTPTimeout = time.Minute
		c.TFTPFirstACKTimeout = time.Minute
	})
	kernel := randomBytes(100_000, 62)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")

	// 127.0.0.2: two transfers waiting for their first ACK.
	stallAfterOACK(t, f.tftpAddr(), "127.0.0.2", name)
	stallAfterOACK(t, f.tftpAddr(), "127.0.0.2", name)
	// 127.0.0.3: two transfers past their first ACK, holding slots.
	for range 2 {
		c := newRawClientAt(t, "127.0.0.3")
		c.sendTo(f.tftpAddr(), packRRQ(name))
		if p, err := c.read(10 * time.Second); err != nil || p.op != opDATA || p.block != 1 {
			t.Fatalf("DATA 1: %+v, %v", p, err)
		}
		c.send(packACK(1))
		if p, err := c.read(10 * time.Second); err != nil || p.op != opDATA || p.block != 2 {
			t.Fatalf("DATA 2: %+v, %v", p, err)
		}
	}
	if m := f.scrape(); m[unacked] != 2 || m[inFlightTFTP] != 2 {
		t.Fatalf("%s = %d, %s = %d; want 2, 2", unacked, m[unacked], inFlightTFTP, m[inFlightTFTP])
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		if _, err := getFrom(f.tftpAddr(), ip, name); !isBusy(err) {
			t.Errorf("a third transfer from %s: %v, want server busy", ip, err)
		}
	}
	if got, err := getFrom(f.tftpAddr(), "127.0.0.4", name); err != nil || !bytes.Equal(got, kernel) {
		t.Errorf("a transfer from 127.0.0.4: %d bytes, %v", len(got), err)
	}
	eventually(t, 10*time.Second, "the refusals counted", func() bool { return f.scrape()[reqSeries("tftp", outcomeBusy)] == 2 })
	if m := f.scrape(); m[perAddrRefused] != 2 {
		t.Errorf("%s = %d, want 2", perAddrRefused, m[perAddrRefused])
	}
	if lines := f.logLinesWith("the most one address may have"); len(lines) != 2 {
		t.Errorf("%d log lines name the cap per address, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// floodSource is a flood's source address and how many sockets it uses.
type floodSource struct {
	ip      string
	sockets int
}

// abandonFlood sends TFTP read requests and acknowledges nothing: from
// sockets on several source addresses, each socket one request every
// interval, until stop, or for at most floodMaxDuration.
type abandonFlood struct {
	sent  atomic.Int64
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	conns []*net.UDPConn
}

// Bounds on a flood, whatever the caller asks.
const (
	floodMaxDuration = 2 * time.Minute
	floodMaxRequests = 200_000
)

func startAbandonFlood(t *testing.T, server string, sources []floodSource, interval time.Duration, requests [][]byte) *abandonFlood {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	fl := &abandonFlood{done: make(chan struct{})}
	for _, src := range sources {
		for range src.sockets {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src.ip)})
			if err != nil {
				fl.stop()
				t.Fatalf("flood socket on %s: %v", src.ip, err)
			}
			fl.conns = append(fl.conns, conn)
		}
	}
	t.Cleanup(func() { fl.stop() })
	end := time.Now().Add(floodMaxDuration)
	for i, conn := range fl.conns {
		fl.wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := i; time.Now().Before(end) && fl.sent.Load() < floodMaxRequests; n++ {
				if _, err := conn.WriteToUDP(requests[n%len(requests)], to); err == nil {
					fl.sent.Add(1)
				}
				select {
				case <-fl.done:
					return
				case <-tick.C:
				}
			}
		})
	}
	return fl
}

// stop ends the flood and closes its sockets; it returns the requests sent.
func (fl *abandonFlood) stop() int64 {
	fl.once.Do(func() {
		close(fl.done)
		fl.wg.Wait()
		for _, c := range fl.conns {
			c.Close()
		}
	})
	return fl.sent.Load()
}

// TestTFTPFloodOfAbandonedRequests is issue 17, item 4: about 150 read
// requests a second, from 46 sockets on 16 loopback addresses (one of
// them with 16 sockets) that never acknowledge anything, go on for the
// whole test; with pin/tftp's server they held every transfer slot and
// every real client was refused as busy. Now, meanwhile, real clients (pin/tftp's client and curl) fetch
// files one after another and every fetch succeeds (a refusal as busy may
// be retried twice, as firmware would; curl 7.88 does not print the ERROR
// it got, so only pin/tftp's refusals are told apart); the flood's transfers never hold a
// transfer slot and no flood address has more than its share; and when the
// flood stops everything is given back and every request was counted.
func TestTFTPFloodOfAbandonedRequests(t *testing.T) {
	const (
		sources  = 16
		interval = 300 * time.Millisecond
		// Each client fetches at least minFetches times, and both go on
		// for at least minFetching (several rounds of the flood's
		// transfers timing out), but no more than maxFetches times.
		minFetches  = 10
		minFetching = 5 * time.Second
		maxFetches  = 200
		perAddr     = DefaultMaxTransfersPerAddress
	)
	f := newFixture(t, func(c *Config) {
		c.MaxTransfersPerAddress = perAddr
	})
	kernel := randomBytes(300_000, 63)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	before := measure(t)

	var (
		addrs []string
		srcs  []floodSource
	)
	for i := range sources {
		addrs = append(addrs, fmt.Sprintf("127.0.0.%d", 10+i))
		srcs = append(srcs, floodSource{ip: addrs[i], sockets: 2})
	}
	srcs[0].sockets = 16 // more requests than one address may have transfers
	fl := startAbandonFlood(t, f.tftpAddr(), srcs, interval, [][]byte{
		packRRQ(name, "blksize", "1468", "tsize", "0"),
		packRRQ(name),
		packRRQ("boot.ipxe", "tsize", "0"),
	})
	waiting := &f.srv.metrics.tftpGate.waiting
	eventually(t, 30*time.Second, "the flood to fill the transfers waiting for a first ACK", func() bool {
		return waiting.Load() == int64(f.srv.cfg.TFTPMaxUnacknowledged)
	})

	// Watch, while the real clients fetch, the slots held and the
	// transfers of each flood address.
	var maxInFlight, maxPerFloodAddr atomic.Int64
	watchDone := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			maxInFlight.Store(max(maxInFlight.Load(), f.srv.metrics.inFlight["tftp"].Load()))
			for _, a := range addrs {
				maxPerFloodAddr.Store(max(maxPerFloodAddr.Load(), int64(f.srv.tftp.gate.transfers(netip.MustParseAddr(a)))))
			}
			select {
			case <-watchDone:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})

	clients := []struct {
		name string
		get  func() ([]byte, error)
	}{
		{"pin/tftp's client", func() ([]byte, error) { return getFrom(f.tftpAddr(), "127.0.0.1", name) }},
		{"curl", func() ([]byte, error) { return curlTFTP(t, "tftp://"+f.tftpAddr()+"/"+name) }},
	}
	var served, retried, attempts, rounds int64
	start := time.Now()
	for i := 0; i < maxFetches && (i < minFetches || time.Since(start) < minFetching); i++ {
		rounds++
		for _, c := range clients {
			var err error
			for try := 0; try < 3; try++ {
				attempts++
				var got []byte
				got, err = c.get()
				if err == nil && !bytes.Equal(got, kernel) {
					err = fmt.Errorf("got %d bytes (sha256 %s), want %d (sha256 %s)", len(got), sum(got), len(kernel), sum(kernel))
				}
				if err == nil || !strings.Contains(err.Error(), "busy") {
					break
				}
				retried++
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("%s, fetch %d, during the flood: %v", c.name, i, err)
				continue
			}
			served++
		}
	}
	elapsed := time.Since(start)
	close(watchDone)
	watch.Wait()
	during := f.scrape()
	sent := fl.stop()
	t.Logf("%d of %d fetches served during the flood in %s (%d refusals retried); flood: %d requests, %d transfers dropped for newer ones, %d refused per address",
		served, rounds*int64(len(clients)), elapsed.Round(time.Millisecond), retried, sent, during[unackedDropped], during[perAddrRefused])

	// One real transfer at a time, and the one before it may still be
	// ending: at most 2. The flood's transfers hold none.
	if got := maxInFlight.Load(); got > 2 {
		t.Errorf("%d transfer slots held at once; only the real clients' transfers may hold one", got)
	}
	if got := maxPerFloodAddr.Load(); got > perAddr {
		t.Errorf("a flood address had %d transfers, more than the %d one address may have", got, perAddr)
	}
	if during[unackedDropped] == 0 || during[perAddrRefused] == 0 {
		t.Errorf("the flood neither filled the waiting transfers nor hit the cap per address: %v", during)
	}

	// The flood's sockets are closed: what still waits for them ends.
	eventually(t, releaseDeadline, "nothing in flight or waiting", func() bool {
		m := f.scrape()
		return m[inFlightTFTP] == 0 && m[unacked] == 0 && requests(m, "tftp") >= sent+attempts
	})
	checkReleased(t, "after the flood", before)
	m := f.scrape()
	total, ok := requests(m, "tftp"), m[reqSeries("tftp", outcomeOK)]
	if ok != served {
		t.Errorf("%d requests counted ok, %d fetches served", ok, served)
	}
	// A client that gets no answer in time asks again (a request more
	// than the attempts), so at least: every flood request and every
	// attempt.
	if total < sent+attempts {
		t.Errorf("%d requests counted, want at least %d (flood) + %d (real clients)", total, sent, attempts)
	}
	if rest := m[reqSeries("tftp", outcomeBusy)] + m[reqSeries("tftp", outcomeTimeout)]; rest != total-ok {
		t.Errorf("of %d requests, %d ok and %d busy or timeout; want nothing else: %v", total, ok, rest, m)
	}
}

// TestTFTPDualStack: with the listener on all addresses of both families,
// a transfer answers from the address its request was sent to, over IPv4
// and IPv6 (pin/tftp's clients take only answers from that address).
func TestTFTPDualStack(t *testing.T) {
	if ln, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	f := newFixture(t, func(c *Config) { c.TFTPAddr = ":0" })
	kernel := randomBytes(50_000, 64)
	v := f.putEntry(testMAC, kernel, nil, "", nil)
	name := versionFileName(v.MAC, v.ID, "kernel")
	port := f.srv.TFTPAddr().(*net.UDPAddr).Port
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		if got, err := getFrom(addr, host, name); err != nil || !bytes.Equal(got, kernel) {
			t.Errorf("fetch from %s: %d bytes, %v", addr, len(got), err)
		}
		if _, err := getFrom(addr, host, "nothing-by-this-name"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("fetch of a name not served from %s: %v, want file not found", addr, err)
		}
	}
}
