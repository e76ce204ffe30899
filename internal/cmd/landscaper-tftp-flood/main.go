// Command landscaper-tftp-flood sends TFTP read requests and acknowledges
// nothing: the clients of issue 17, item 4 (sockets that never answer, or
// forged source addresses), for scripts/bench-pxe.sh. It sends from
// several sockets on several loopback source addresses (all of 127/8 is
// loopback), at a given total rate, for a given time or until SIGTERM or
// SIGINT, to a server on loopback only; then it prints how many requests
// it sent.
//
//	landscaper-tftp-flood --server 127.0.0.1:6969 --file ipxe.efi --rate 100 --duration 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds, whatever the flags say.
const (
	maxDuration = 10 * time.Minute
	maxRate     = 5000
	maxSockets  = 1024
)

type files []string

func (f *files) String() string     { return fmt.Sprint(*f) }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

type config struct {
	server      netip.AddrPort
	names       files
	firstSource netip.Addr
	sources     int
	sockets     int
	hotSockets  int
	rate        float64
	duration    time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "landscaper-tftp-flood:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg         config
		server      string
		firstSource string
	)
	flag.StringVar(&server, "server", "", "the TFTP server's `address` (host:port), on loopback")
	flag.Var(&cfg.names, "file", "a file `name` to ask for (repeatable; every name is asked for with the options blksize 1468 and tsize, and without options, in turn)")
	flag.StringVar(&firstSource, "first-source", "127.0.0.10", "the first source `address`; the others follow it")
	flag.IntVar(&cfg.sources, "sources", 16, "how many source addresses")
	flag.IntVar(&cfg.sockets, "sockets", 2, "sockets on each source address")
	flag.IntVar(&cfg.hotSockets, "hot-sockets", 16, "sockets on the first source address (one address sending more than its share)")
	flag.Float64Var(&cfg.rate, "rate", 100, "requests a second, from all sockets together")
	flag.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to send (at most 10m)")
	flag.Parse()
	var err error
	if cfg.server, err = netip.ParseAddrPort(server); err != nil {
		return fmt.Errorf("--server %q: %w", server, err)
	}
	if cfg.firstSource, err = netip.ParseAddr(firstSource); err != nil {
		return fmt.Errorf("--first-source %q: %w", firstSource, err)
	}
	switch {
	case !cfg.server.Addr().IsLoopback():
		return fmt.Errorf("--server %s is not on loopback; this tool floods loopback only", cfg.server)
	case len(cfg.names) == 0:
		return errors.New("no --file")
	case cfg.sources < 1 || cfg.sockets < 1 || cfg.hotSockets < 1:
		return errors.New("--sources, --sockets and --hot-sockets must be at least 1")
	case cfg.hotSockets+(cfg.sources-1)*cfg.sockets > maxSockets:
		return fmt.Errorf("more than %d sockets", maxSockets)
	case cfg.rate <= 0 || cfg.rate > maxRate:
		return fmt.Errorf("--rate must be above 0 and at most %d", maxRate)
	case cfg.duration <= 0 || cfg.duration > maxDuration:
		return fmt.Errorf("--duration must be above 0 and at most %s", maxDuration)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	sent, err := flood(ctx, cfg)
	fmt.Println(sent)
	return err
}

// flood sends until ctx is done and returns the requests sent.
func flood(ctx context.Context, cfg config) (int64, error) {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	src := cfg.firstSource
	for i := range cfg.sources {
		if !src.IsLoopback() {
			return 0, fmt.Errorf("source address %s is not on loopback", src)
		}
		n := cfg.sockets
		if i == 0 {
			n = cfg.hotSockets
		}
		for range n {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				return 0, fmt.Errorf("socket on %s: %w", src, err)
			}
			conns = append(conns, c)
		}
		src = src.Next()
	}
	var requests [][]byte
	for _, name := range cfg.names {
		requests = append(requests, rrq(name, "blksize", "1468", "tsize", "0"), rrq(name))
	}
	// Each socket sends at rate/len(conns), the sockets spread over one
	// period.
	period := time.Duration(float64(len(conns)) / cfg.rate * float64(time.Second))
	to := net.UDPAddrFromAddrPort(cfg.server)
	var (
		sent atomic.Int64
		wg   sync.WaitGroup
	)
	for i, c := range conns {
		wg.Go(func() {
			if sleep(ctx, period*time.Duration(i)/time.Duration(len(conns))) != nil {
				return
			}
			tick := time.NewTicker(period)
			defer tick.Stop()
			for n := i; ; n++ {
				if _, err := c.WriteToUDP(requests[n%len(requests)], to); err == nil {
					sent.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	return sent.Load(), nil
}

// rrq is a TFTP read request in octet mode with options (name, value, ...).
func rrq(name string, opts ...string) []byte {
	b := []byte{0, 1}
	for _, s := range append([]string{name, "octet"}, opts...) {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
