package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testEnv(stderr io.Writer) Env {
	return Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr, Getenv: func(string) string { return "" }}
}

var listeningRe = regexp.MustCompile(`msg="boot server listening".* http=(\S+)`)

// waitListening waits for the server's start line and returns its HTTP
// address.
func waitListening(t *testing.T, stderr *syncBuffer, done <-chan struct{}) string {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if m := listeningRe.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case <-done:
			t.Fatalf("serve ended before listening:\n%s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", stderr.String())
	return ""
}

func serveArgs(t *testing.T) []string {
	return []string{"serve", "--boot-dir", t.TempDir(), "--ipxe-dir", t.TempDir(),
		"--tftp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--max-transfers", "8", "--max-transfers-per-address", "3", "--transfer-timeout", "1m"}
}

func TestServeRunsUntilCancelled(t *testing.T) {
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	done := make(chan struct{})
	go func() { err = run(ctx, serveArgs(t), testEnv(stderr)); close(done) }()
	addr := waitListening(t, stderr, done)

	resp, gerr := http.Get("http://" + addr + "/boot.ipxe")
	if gerr != nil {
		t.Fatal(gerr)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "#!ipxe") {
		t.Errorf("boot.ipxe: %s %q", resp.Status, body)
	}
	resp, gerr = http.Get("http://" + addr + "/metrics")
	if gerr != nil {
		t.Fatal(gerr)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "landscaper_boot_transfers_max 8") {
		t.Errorf("--max-transfers not applied:\n%s", body)
	}
	if !strings.Contains(stderr.String(), "max_transfers_per_address=3") {
		t.Errorf("--max-transfers-per-address not applied:\n%s", stderr.String())
	}

	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(stderr.String(), "file=/boot.ipxe") {
		t.Errorf("no request log line:\n%s", stderr.String())
	}
}

// TestServeSIGTERM runs the whole command line and sends the process
// SIGTERM: serve drains and exits 0.
func TestServeSIGTERM(t *testing.T) {
	stderr := &syncBuffer{}
	code := -1
	done := make(chan struct{})
	go func() { code = Main(serveArgs(t), testEnv(stderr)); close(done) }()
	waitListening(t, stderr, done) // Main has set up its signal handler by now
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if code != 0 {
		t.Fatalf("exit code %d, want 0:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "boot server stopped") {
		t.Errorf("no drain:\n%s", stderr.String())
	}
}

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown flag", []string{"serve", "--nope"}, 2},
		{"argument", []string{"serve", "extra"}, 2},
		{"no transfers", []string{"serve", "--max-transfers", "0"}, 2},
		{"no transfers per address", []string{"serve", "--max-transfers-per-address", "0"}, 2},
		{"bad timeout", []string{"serve", "--transfer-timeout", "-1s"}, 2},
		{"nothing to listen on", []string{"serve", "--tftp-listen", "", "--http-listen", ""}, 1},
		{"bad http url", []string{"serve", "--tftp-listen", "", "--http-listen", "127.0.0.1:0", "--http-url", "ftp://x"}, 1},
		{"bad address", []string{"serve", "--tftp-listen", "", "--http-listen", "127.0.0.1:99999"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, testEnv(io.Discard))
			if err == nil {
				t.Fatal("no error")
			}
			code := 1
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			}
			if code != tt.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.code)
			}
		})
	}
	if err := run(context.Background(), []string{"serve", "-h"}, testEnv(io.Discard)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
