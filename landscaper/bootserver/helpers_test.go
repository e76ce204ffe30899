package bootserver

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// fixture is a running server on loopback with a temporary boot directory.
type fixture struct {
	t       testing.TB
	bootDir string
	ipxeDir string
	store   bootentry.Store
	srv     *Server
	opened  *openLog
	logs    *lockedBuffer
	cancel  context.CancelFunc
	done    chan error
}

// openLog records every path the server opens.
type openLog struct {
	mu    sync.Mutex
	paths []string
}

func (o *openLog) open(path string) (*os.File, error) {
	o.mu.Lock()
	o.paths = append(o.paths, path)
	o.mu.Unlock()
	return os.Open(path)
}

func (o *openLog) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.paths...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ipxeBinaryContent is what the fake iPXE binaries hold.
func ipxeBinaryContent(name string) []byte { return []byte("fake iPXE binary " + name + "\n") }

// newFixture starts a server listening on 127.0.0.1 (both protocols) with
// short defaults; mod may change the config before the server starts.
func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, bootDir: t.TempDir(), ipxeDir: t.TempDir(), opened: &openLog{}, logs: &lockedBuffer{}}
	f.store = bootentry.Store{Dir: f.bootDir}
	for name := range ipxeBinaries {
		if err := os.WriteFile(filepath.Join(f.ipxeDir, name), ipxeBinaryContent(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		BootDir:         f.bootDir,
		TFTPAddr:        "127.0.0.1:0",
		HTTPAddr:        "127.0.0.1:0",
		IPXEDir:         f.ipxeDir,
		TransferTimeout: time.Minute,
		TFTPTimeout:     2 * time.Second,
		TFTPRetries:     3,
		DrainTimeout:    2 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(f.logs, nil)),
		Open:            f.opened.open,
	}
	if mod != nil {
		mod(&cfg)
	}
	if cfg.MaxTransfersPerAddress == 0 {
		// The tests' clients all come from 127.0.0.1: no cap per address
		// unless the test sets one.
		cfg.MaxTransfersPerAddress = cmp.Or(cfg.MaxTransfers, DefaultMaxTransfers)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
		}
	})
	return f
}

// stop cancels Serve and waits for it; calling it twice is harmless.
func (f *fixture) stop() error {
	f.cancel()
	select {
	case err, ok := <-f.done:
		if ok {
			close(f.done)
		}
		return err
	case <-time.After(30 * time.Second):
		return errors.New("Serve did not return within 30s of cancel")
	}
}

func (f *fixture) tftpAddr() string { return f.srv.TFTPAddr().String() }
func (f *fixture) httpBase() string { return "http://" + f.srv.HTTPAddr().String() + "/" }

// artifact writes a file outside the boot directory, as a store path
// would be, and returns its path.
func (f *fixture) artifact(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// putEntry writes an entry for mac with the given kernel and initrds.
func (f *fixture) putEntry(mac string, kernel []byte, initrds [][]byte, cmdline string, extra []byte) *bootentry.Version {
	f.t.Helper()
	e := bootentry.Entry{MAC: mac, Kernel: f.artifact("bzImage", kernel), Cmdline: cmdline}
	for i, d := range initrds {
		e.Initrds = append(e.Initrds, f.artifact(fmt.Sprintf("initrd%d", i), d))
	}
	v, err := f.store.Put(e, extra)
	if err != nil {
		f.t.Fatalf("Put: %v", err)
	}
	return v
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
	_, _ = r.Read(b)
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// tftpGet fetches name with pin/tftp's client. size is the tsize the
// server reported, or -1.
func tftpGet(addr, name string, blksize int, tsize bool) (data []byte, size int64, err error) {
	c, err := tftp.NewClient(addr)
	if err != nil {
		return nil, -1, err
	}
	c.SetTimeout(3 * time.Second)
	c.SetRetries(3)
	c.SetBackoff(func(int) time.Duration { return 10 * time.Millisecond })
	if blksize > 0 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(tsize)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, -1, err
	}
	size = -1
	if in, ok := wt.(tftp.IncomingTransfer); ok {
		if n, ok := in.Size(); ok {
			size = n
		}
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, size, err
	}
	return buf.Bytes(), size, nil
}

// httpGet fetches a URL and returns the response with its body read.
func httpGet(t testing.TB, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, b
}

// rawHTTP sends a request line as given, byte for byte, and returns the
// status code of the answer.
func rawHTTP(t *testing.T, addr, target string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: boot\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// scrape reads /metrics into series -> value.
func (f *fixture) scrape() map[string]int64 {
	f.t.Helper()
	resp, body := httpGet(f.t, f.httpBase()+"metrics", nil)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("/metrics: %s", resp.Status)
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			f.t.Fatalf("/metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

func reqSeries(protocol string, o outcome) string {
	return fmt.Sprintf("landscaper_boot_requests_total{protocol=%q,outcome=%q}", protocol, o)
}

// requests sums the request counters of a protocol.
func requests(m map[string]int64, protocol string) int64 {
	var n int64
	for _, o := range outcomes {
		n += m[reqSeries(protocol, o)]
	}
	return n
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TFTP packets, for tests that play a misbehaving client by hand.
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

func packRRQ(name string, opts ...string) []byte {
	b := []byte{0, opRRQ}
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, "octet"...)
	b = append(b, 0)
	for _, o := range opts {
		b = append(b, o...)
		b = append(b, 0)
	}
	return b
}

func packACK(block uint16) []byte {
	return []byte{0, opACK, byte(block >> 8), byte(block)}
}

func packERROR(code uint16, msg string) []byte {
	b := []byte{0, opERROR, byte(code >> 8), byte(code)}
	b = append(b, msg...)
	return append(b, 0)
}

// rawClient is a UDP socket that speaks TFTP by hand.
type rawClient struct {
	t    *testing.T
	conn *net.UDPConn
	// peer is the transfer's address (the server's TID) once known.
	peer *net.UDPAddr
}

func newRawClient(t *testing.T) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn}
}

func (c *rawClient) sendTo(addr string, p []byte) {
	c.t.Helper()
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.WriteToUDP(p, a); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) send(p []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(p, c.peer); err != nil {
		c.t.Fatal(err)
	}
}

// packet is a TFTP packet as received.
type packet struct {
	op    uint16
	block uint16 // DATA and ACK; the error code for ERROR
	body  []byte
}

// read reads the next packet, noting the sender as the peer.
func (c *rawClient) read(timeout time.Duration) (packet, error) {
	buf := make([]byte, 65536)
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		return packet{}, err
	}
	c.peer = from
	if n < 4 {
		return packet{}, fmt.Errorf("short packet (%d bytes)", n)
	}
	p := packet{op: binary.BigEndian.Uint16(buf), body: append([]byte(nil), buf[2:n]...)}
	if p.op == opDATA || p.op == opACK || p.op == opERROR {
		p.block = binary.BigEndian.Uint16(buf[2:])
		p.body = append([]byte(nil), buf[4:n]...)
	}
	return p, nil
}

// oackOptions parses the options of an OACK packet.
func oackOptions(p packet) map[string]string {
	parts := bytes.Split(p.body, []byte{0})
	opts := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		opts[string(parts[i])] = string(parts[i+1])
	}
	return opts
}
