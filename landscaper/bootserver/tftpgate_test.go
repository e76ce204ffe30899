package bootserver

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseTFTPRequest(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want tftpRequest
		bad  bool
	}{
		{name: "RRQ", data: packRRQ("boot.ipxe"), want: tftpRequest{filename: "boot.ipxe", mode: "octet"}},
		{name: "RRQ with options", data: packRRQ("a/b", "blksize", "1468", "tsize", "0"),
			want: tftpRequest{filename: "a/b", mode: "octet", options: []tftpOption{{"blksize", "1468"}, {"tsize", "0"}}}},
		{name: "WRQ", data: append([]byte{0, opWRQ}, "x\x00netascii\x00"...), want: tftpRequest{write: true, filename: "x", mode: "netascii"}},
		{name: "no mode", data: append([]byte{0, opRRQ}, "x\x00"...), want: tftpRequest{filename: "x"}},
		{name: "option without a value", data: packRRQ("x", "tsize"), want: tftpRequest{filename: "x", mode: "octet", options: []tftpOption{{"tsize", ""}}}},
		{name: "last option cut off", data: append(packRRQ("x", "blksize", "1468"), "tsi"...),
			want: tftpRequest{filename: "x", mode: "octet", options: []tftpOption{{"blksize", "1468"}}}},
		{name: "empty", data: nil, bad: true},
		{name: "opcode only", data: []byte{0, opRRQ}, bad: true},
		{name: "3 bytes", data: []byte{0, opRRQ, 'x'}, bad: true},
		{name: "no NUL", data: append([]byte{0, opRRQ}, "boot.ipxe"...), bad: true},
		{name: "ACK", data: packACK(1), bad: true},
		{name: "ERROR", data: packERROR(0, "x"), bad: true},
		{name: "DATA", data: []byte{0, opDATA, 0, 1, 'x'}, bad: true},
		{name: "OACK", data: []byte{0, opOACK, 'b', 0, '1', 0}, bad: true},
		{name: "opcode 7", data: []byte{0, 7, 'x', 0, 'y', 0}, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTFTPRequest(tc.data)
			if tc.bad {
				if !errors.Is(err, errNotARequest) {
					t.Errorf("got %+v, %v; want an error wrapping errNotARequest", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestTFTPNegotiate(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		opts     []tftpOption
		maxBlock int
		block    int
		oack     []tftpOption
	}{
		{name: "none", block: 512},
		{name: "blksize and tsize", opts: []tftpOption{{"blksize", "1468"}, {"tsize", "0"}}, block: 1468,
			oack: []tftpOption{{"blksize", "1468"}, {"tsize", "70000"}}},
		{name: "names in capitals, answered as spelt", opts: []tftpOption{{"BLKSIZE", "1432"}, {"TSize", "0"}}, block: 1432,
			oack: []tftpOption{{"BLKSIZE", "1432"}, {"TSize", "70000"}}},
		{name: "blksize capped", opts: []tftpOption{{"blksize", "65464"}}, maxBlock: 1468, block: 1468, oack: []tftpOption{{"blksize", "1468"}}},
		{name: "blksize too small", opts: []tftpOption{{"blksize", "8"}}, block: 512},
		{name: "blksize too large", opts: []tftpOption{{"blksize", "65465"}}, block: 512},
		{name: "blksize not a number", opts: []tftpOption{{"blksize", "9999999999999999999999"}}, block: 512},
		{name: "repeated options count once", opts: []tftpOption{{"blksize", "1024"}, {"blksize", "2048"}, {"tsize", "0"}, {"tsize", "0"}}, block: 1024,
			oack: []tftpOption{{"blksize", "1024"}, {"tsize", "70000"}}},
		{name: "unknown options are not answered", opts: []tftpOption{{"timeout", "1"}, {"windowsize", "8"}}, block: 512},
		{name: "no tsize in netascii", mode: "netascii", opts: []tftpOption{{"tsize", "0"}}, block: 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxBlock := tc.maxBlock
			if maxBlock == 0 {
				maxBlock = tftpMaxBlockSize
			}
			rq := tftpRequest{filename: "x", mode: tc.mode, options: tc.opts}
			block, oack := rq.negotiate(70000, maxBlock)
			if block != tc.block || !reflect.DeepEqual(oack, tc.oack) {
				t.Errorf("negotiate = %d, %v; want %d, %v", block, oack, tc.block, tc.oack)
			}
		})
	}
}

// TestTFTPGate: the gate keeps at most maxWaiting transfers waiting for
// their first acknowledgement, dropping the oldest for a newer one; an
// acknowledged transfer leaves the waiting ones and cannot be dropped; and
// one address may have at most maxPerAddress transfers, waiting or not.
func TestTFTPGate(t *testing.T) {
	m := &tftpGateMetrics{}
	g := newTFTPGate(2, 3, m)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	type admitted struct {
		ticket *tftpTicket
		ctx    context.Context
	}
	admit := func(addr netip.Addr) (admitted, error) {
		t.Helper()
		ctx, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		ticket, err := g.admit(addr, cancel)
		return admitted{ticket, ctx}, err
	}
	mustAdmit := func(addr netip.Addr) admitted {
		t.Helper()
		x, err := admit(addr)
		if err != nil {
			t.Fatalf("admit %s: %v", addr, err)
		}
		return x
	}
	dropped := func(x admitted) bool { return errors.Is(context.Cause(x.ctx), errDropped) }

	a1, a2 := mustAdmit(a), mustAdmit(a)
	if _, err := admit(a); !errors.Is(err, errBusy) || !strings.Contains(err.Error(), "192.0.2.1") {
		t.Errorf("a third transfer from one address: %v, want busy, naming the address", err)
	}
	if m.refusedPerAddress.Load() != 1 {
		t.Errorf("refused per address = %d, want 1", m.refusedPerAddress.Load())
	}
	if !g.acknowledged(a1.ticket) {
		t.Fatal("a1 acknowledged: dropped")
	}
	// Acknowledged, a1 still counts for its address.
	if _, err := admit(a); !errors.Is(err, errBusy) {
		t.Errorf("a third transfer from one address, one acknowledged: %v, want busy", err)
	}
	b1, c1 := mustAdmit(b), mustAdmit(c)
	if m.waiting.Load() != 3 || dropped(a2) {
		t.Fatalf("waiting = %d (want 3), a2 dropped %v", m.waiting.Load(), dropped(a2))
	}
	// The pool is full (a2, b1, c1): the next drops the oldest, a2, and
	// never a1, which was acknowledged.
	b2 := mustAdmit(b)
	if !dropped(a2) || dropped(a1) || dropped(b1) || dropped(c1) {
		t.Errorf("dropped: a1 %v, a2 %v, b1 %v, c1 %v; want a2 only", dropped(a1), dropped(a2), dropped(b1), dropped(c1))
	}
	if g.acknowledged(a2.ticket) {
		t.Errorf("a dropped transfer was acknowledged")
	}
	if m.waiting.Load() != 3 || m.dropped.Load() != 1 {
		t.Errorf("waiting %d, dropped %d; want 3, 1", m.waiting.Load(), m.dropped.Load())
	}
	// A dropped transfer counts for its address until it is released.
	if g.transfers(a) != 2 {
		t.Errorf("transfers of %s = %d, want 2", a, g.transfers(a))
	}
	g.release(a2.ticket)
	a3 := mustAdmit(a) // drops b1
	if !dropped(b1) || dropped(c1) {
		t.Errorf("dropped b1 %v, c1 %v; want b1 only", dropped(b1), dropped(c1))
	}
	for _, x := range []admitted{a1, a3, b1, b2, c1} {
		g.release(x.ticket)
	}
	if m.waiting.Load() != 0 || g.waiting.Len() != 0 || len(g.perAddress) != 0 {
		t.Errorf("after every release: waiting %d, list %d, addresses %v", m.waiting.Load(), g.waiting.Len(), g.perAddress)
	}
}
