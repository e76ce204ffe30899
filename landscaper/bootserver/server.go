// Package bootserver is the landscaper network boot server: it serves the
// boot entries the pxe-nbp provider writes (see package bootentry) and the
// iPXE binaries, over TFTP and HTTP, read-only.
//
// Names clients may ask for, the same over both protocols:
//
//	boot.ipxe                       chains to the machine's own script by MAC
//	machine/<mac>.ipxe              a machine's script (any MAC notation)
//	v/<mac>/<version>/kernel        a version's kernel
//	v/<mac>/<version>/initrd/<n>    its n-th initrd
//	v/<mac>/<version>/extra.cpio    its extra archive of per-machine files
//	undionly.kpxe, ipxe.efi, snponly.efi   iPXE, from the iPXE directory
//
// A name is parsed, never used as a path: the files are found through the
// entries, which are read on every request, so new, changed and removed
// entries take effect at once. Anything else gets an error.
//
// A version's extra.cpio holds that machine's secrets, and PXE has no
// client authentication: the archive is served only to the first client
// that fetched the version's script, and to nobody once the version is
// sealed; every serving and refusal is written to the version's fetch
// record in the boot directory (see secret.go and bootentry.Claim), so
// the server writes there, and nowhere else.
//
// Every request gets one log line (protocol, remote address, MAC when
// known, file, bytes, duration, outcome) and is counted once, by outcome,
// in the Prometheus metrics at /metrics on the HTTP listener:
// landscaper_boot_requests_total{protocol,outcome},
// landscaper_boot_sent_bytes_total{protocol},
// landscaper_boot_tftp_size_probes_total,
// landscaper_boot_tftp_bad_datagrams_total (datagrams that are no request:
// counted, not logged),
// landscaper_boot_transfers_refused_total{protocol},
// landscaper_boot_secret_refused_total{protocol,reason} (extra archives
// refused; each also logged at level ERROR, or WARN for a machine asking
// for its own sealed archive),
// landscaper_boot_transfers_in_flight{protocol} and
// landscaper_boot_transfers_max; and for TFTP transfers whose client has
// not acknowledged the first packet yet, which hold no transfer slot
// (see tftpGate): landscaper_boot_tftp_unacknowledged,
// landscaper_boot_tftp_unacknowledged_max,
// landscaper_boot_tftp_unacknowledged_dropped_total and
// landscaper_boot_tftp_refused_per_address_total. The process itself:
// go_goroutines, process_resident_memory_bytes and process_open_fds.
package bootserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxTransfers    = 64
	DefaultTransferTimeout = 10 * time.Minute
	DefaultTFTPTimeout     = 5 * time.Second
	DefaultTFTPRetries     = 5
	DefaultDrainTimeout    = 5 * time.Second
	// DefaultMaxTransfersPerAddress is the default of
	// Config.MaxTransfersPerAddress: an eighth of DefaultMaxTransfers.
	DefaultMaxTransfersPerAddress = 8
	DefaultTFTPFirstACKTimeout    = time.Second
	DefaultTFTPFirstACKRetries    = 2
)

// tftpReadBuffer is the receive buffer the TFTP listener asks for. In a
// boot storm requests arrive faster than one goroutine reads them; the
// kernel's default buffer (about 200 KiB) then drops some, and each dropped
// request costs its client a retransmission timeout, seconds of firmware
// back-off. 4 MiB queues a few thousand requests.
const tftpReadBuffer = 4 << 20

// DefaultIPXEDir is where Debian's ipxe package puts the iPXE binaries.
const DefaultIPXEDir = "/usr/lib/ipxe"

// Config says what a Server serves and how.
type Config struct {
	// BootDir is the directory of boot entries (bootentry.Store).
	BootDir string
	// TFTPAddr and HTTPAddr are the addresses to listen on; empty
	// disables the protocol. At least one is needed.
	TFTPAddr string
	HTTPAddr string
	// HTTPURL is the base URL booting machines reach the HTTP listener
	// at. When set, machine scripts fetch kernels and initrds over HTTP
	// from there, even when the script came over TFTP; otherwise their
	// URLs are relative to the script's own.
	HTTPURL string
	// IPXEDir holds undionly.kpxe, ipxe.efi and snponly.efi; empty serves
	// none.
	IPXEDir string
	// MaxTransfers caps the transfers running at once over both
	// protocols; more are refused. Default DefaultMaxTransfers.
	MaxTransfers int
	// TransferTimeout is the longest one transfer may take. Default
	// DefaultTransferTimeout. TFTP checks it at every block and while it
	// waits for an acknowledgement; a TFTP client that stops answering
	// altogether is dropped after TFTPRetries sends of a packet,
	// TFTPTimeout apart, whichever comes first.
	TransferTimeout time.Duration
	// TFTPTimeout is how long the TFTP server waits for each
	// acknowledgement before resending, TFTPRetries how often it sends a
	// packet before giving up on the client. Defaults DefaultTFTPTimeout
	// and DefaultTFTPRetries.
	TFTPTimeout time.Duration
	TFTPRetries int
	// TFTPMaxBlockSize caps the TFTP block size; 0 grants what the client
	// asks for (up to 65464).
	TFTPMaxBlockSize int
	// MaxTransfersPerAddress caps the TFTP transfers of one client
	// address, acknowledged or not; more are refused as busy. Default
	// DefaultMaxTransfersPerAddress, at most MaxTransfers.
	MaxTransfersPerAddress int
	// A TFTP transfer takes a transfer slot only once its client has
	// acknowledged the first packet (the OACK, or DATA block 1). Until
	// then it waits, among at most TFTPMaxUnacknowledged such transfers
	// (a request beyond that drops the oldest; default MaxTransfers),
	// sending the first packet TFTPFirstACKRetries times,
	// TFTPFirstACKTimeout apart (defaults DefaultTFTPFirstACKRetries and
	// DefaultTFTPFirstACKTimeout, at most TFTPTimeout and TFTPRetries), so
	// that requests from clients that never answer, or from forged
	// addresses, hold nothing for long.
	TFTPMaxUnacknowledged int
	TFTPFirstACKTimeout   time.Duration
	TFTPFirstACKRetries   int
	// DrainTimeout is how long Serve lets running transfers finish once
	// its context is cancelled; then it cuts them off. Default
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger gets one line per request. Default slog.Default().
	Logger *slog.Logger
	// Open opens the files the server serves. Default os.Open. Tests use
	// it to see every file the server opens.
	Open func(path string) (*os.File, error)
	// Mounts serves other handlers on the HTTP listener: a request whose
	// path starts with a key (such as "/pull/v1/") goes to its handler,
	// which logs and counts it itself.
	Mounts map[string]http.Handler
	// ExtraMetrics are written at /metrics after the server's own.
	ExtraMetrics []func(io.Writer)
}

// Server serves boot entries over TFTP and HTTP. Make one with New, then
// call Serve once.
type Server struct {
	cfg     Config
	store   bootentry.Store
	log     *slog.Logger
	metrics *metrics
	slots   slots
	// base is what file names in machine scripts are appended to.
	base string

	tftpConn net.PacketConn
	tftp     *tftpServer
	httpLn   net.Listener
	http     *http.Server

	// abortCtx is cancelled, with cause errShuttingDown, to cut off the
	// transfers still running when the server stops.
	abortCtx context.Context
	abort    context.CancelCauseFunc

	serving   atomic.Bool
	closeOnce sync.Once
}

// New checks cfg, fills in defaults and opens the listeners, so their
// addresses are known (TFTPAddr, HTTPAddr) before Serve is called.
func New(cfg Config) (*Server, error) {
	if cfg.BootDir == "" {
		return nil, errors.New("bootserver: no boot directory")
	}
	if cfg.TFTPAddr == "" && cfg.HTTPAddr == "" {
		return nil, errors.New("bootserver: neither a TFTP nor an HTTP address to listen on")
	}
	if cfg.MaxTransfers <= 0 {
		cfg.MaxTransfers = DefaultMaxTransfers
	}
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = DefaultTransferTimeout
	}
	if cfg.TFTPTimeout <= 0 {
		cfg.TFTPTimeout = DefaultTFTPTimeout
	}
	if cfg.TFTPRetries <= 0 {
		cfg.TFTPRetries = DefaultTFTPRetries
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.MaxTransfersPerAddress <= 0 {
		cfg.MaxTransfersPerAddress = DefaultMaxTransfersPerAddress
	}
	cfg.MaxTransfersPerAddress = min(cfg.MaxTransfersPerAddress, cfg.MaxTransfers)
	if cfg.TFTPMaxUnacknowledged <= 0 {
		cfg.TFTPMaxUnacknowledged = cfg.MaxTransfers
	}
	if cfg.TFTPFirstACKTimeout <= 0 {
		cfg.TFTPFirstACKTimeout = DefaultTFTPFirstACKTimeout
	}
	cfg.TFTPFirstACKTimeout = min(cfg.TFTPFirstACKTimeout, cfg.TFTPTimeout)
	if cfg.TFTPFirstACKRetries <= 0 {
		cfg.TFTPFirstACKRetries = DefaultTFTPFirstACKRetries
	}
	cfg.TFTPFirstACKRetries = min(cfg.TFTPFirstACKRetries, cfg.TFTPRetries)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Open == nil {
		cfg.Open = os.Open
	}
	base := "../" // machine/<mac>.ipxe -> v/...
	if cfg.HTTPURL != "" {
		u, err := checkHTTPURL(cfg.HTTPURL)
		if err != nil {
			return nil, err
		}
		base = u
	}
	s := &Server{
		cfg:     cfg,
		store:   bootentry.Store{Dir: cfg.BootDir},
		log:     cfg.Logger,
		metrics: newMetrics(cfg.MaxTransfers),
		slots:   make(slots, cfg.MaxTransfers),
		base:    base,
	}
	s.abortCtx, s.abort = context.WithCancelCause(context.Background())
	if cfg.TFTPAddr != "" {
		conn, err := net.ListenPacket("udp", cfg.TFTPAddr)
		if err != nil {
			return nil, fmt.Errorf("bootserver: listen for TFTP on %s: %w", cfg.TFTPAddr, err)
		}
		if uc, ok := conn.(*net.UDPConn); ok {
			// Best effort: the kernel caps it at net.core.rmem_max.
			_ = uc.SetReadBuffer(tftpReadBuffer)
		}
		s.tftpConn, s.tftp = conn, s.newTFTP(conn)
	}
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("bootserver: listen for HTTP on %s: %w", cfg.HTTPAddr, err)
		}
		s.httpLn, s.http = ln, s.newHTTP()
	}
	return s, nil
}

// checkHTTPURL checks the base URL machines reach the HTTP listener at and
// returns it ending in "/". It goes into scripts, so it may hold nothing
// iPXE would read as script syntax.
func checkHTTPURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bootserver: HTTP URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("bootserver: HTTP URL %q: want http://host[:port][/path], without query, fragment or user", raw)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return "", fmt.Errorf("bootserver: HTTP URL %q holds a space or control character", raw)
		}
	}
	if strings.Contains(raw, "$") {
		return "", fmt.Errorf("bootserver: HTTP URL %q holds a $, which iPXE would expand", raw)
	}
	return strings.TrimSuffix(raw, "/") + "/", nil
}

// TFTPAddr returns the address the TFTP server listens on, or nil.
func (s *Server) TFTPAddr() net.Addr {
	if s.tftpConn == nil {
		return nil
	}
	return s.tftpConn.LocalAddr()
}

// HTTPAddr returns the address the HTTP server listens on, or nil.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Close releases the listeners of a server that is not serving. Serve
// closes them itself when it returns.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.tftpConn != nil {
			s.tftpConn.Close()
		}
		if s.httpLn != nil {
			s.httpLn.Close()
		}
		s.abort(errShuttingDown)
	})
	return nil
}

// Serve serves until ctx is cancelled, then drains: it stops taking
// requests, gives running transfers DrainTimeout to finish, cuts off the
// rest and returns. Serve returns an error if a listener fails; it
// returns nil after a drain.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("bootserver: Serve called twice")
	}
	defer s.Close()
	attrs := []any{"boot_dir", s.cfg.BootDir, "ipxe_dir", s.cfg.IPXEDir, "max_transfers", s.cfg.MaxTransfers, "max_transfers_per_address", s.cfg.MaxTransfersPerAddress, "transfer_timeout", s.cfg.TransferTimeout}
	errc := make(chan error, 2)
	running := 0
	if s.tftpConn != nil {
		running++
		attrs = append(attrs, "tftp", s.TFTPAddr().String())
		go func() {
			if err := s.tftp.Serve(); err != nil {
				errc <- fmt.Errorf("bootserver: serve TFTP on %s: %w", s.TFTPAddr(), err)
				return
			}
			errc <- nil
		}()
	}
	if s.httpLn != nil {
		running++
		attrs = append(attrs, "http", s.HTTPAddr().String())
		go func() {
			if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("bootserver: serve HTTP on %s: %w", s.HTTPAddr(), err)
				return
			}
			errc <- nil
		}()
	}
	if s.cfg.HTTPURL != "" {
		attrs = append(attrs, "http_url", s.cfg.HTTPURL)
	}
	s.log.Info("boot server listening", attrs...)
	if readOnly(s.cfg.BootDir) {
		s.log.Error("the boot directory is on a read-only file system: the server cannot record which client fetched a machine's script, so it refuses every machine's extra.cpio", "boot_dir", s.cfg.BootDir)
	}

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		running--
	}
	s.log.Info("boot server stopping: draining transfers", "grace", s.cfg.DrainTimeout)
	s.drain()
	for ; running > 0; running-- {
		if err := <-errc; err != nil && failed == nil {
			failed = err
		}
	}
	s.log.Info("boot server stopped")
	return failed
}

// readOnly reports whether dir, or the nearest directory above it that
// exists, is on a file system mounted read-only (as a systemd service with
// ProtectSystem=strict sees everything it was not given write access to).
func readOnly(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st syscall.Statfs_t
		err := syscall.Statfs(d, &st)
		if err == nil {
			return st.Flags&stRdonly != 0
		}
		if !errors.Is(err, syscall.ENOENT) || d == filepath.Dir(d) {
			return false
		}
	}
}

// stRdonly is ST_RDONLY of statfs(2)'s f_flags.
const stRdonly = 0x1

// drain stops both servers: no new requests, DrainTimeout for the running
// ones, then the rest are cut off.
func (s *Server) drain() {
	grace, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if s.http != nil {
		wg.Go(func() {
			if err := s.http.Shutdown(grace); err != nil {
				s.abort(errShuttingDown)
				s.http.Close()
			}
		})
	}
	if s.tftp != nil {
		// pin/tftp's Shutdown closes the listener and waits for every
		// transfer; the transfers end at the latest when abort makes
		// their reads fail.
		wg.Go(s.tftp.Shutdown)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-grace.Done():
		s.abort(errShuttingDown)
		<-done
	}
	s.abort(errShuttingDown)
}
