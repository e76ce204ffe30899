package bootserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The TFTP packets the server reads and writes (RFC 1350, options RFC
// 2347, blksize RFC 2348, tsize RFC 2349).

// TFTP opcodes.
const (
	tftpOpRRQ   uint16 = 1
	tftpOpWRQ   uint16 = 2
	tftpOpDATA  uint16 = 3
	tftpOpACK   uint16 = 4
	tftpOpERROR uint16 = 5
	tftpOpOACK  uint16 = 6
)

// TFTP error codes.
const (
	tftpErrUndefined uint16 = 0 // see the message
	tftpErrNotFound  uint16 = 1
	tftpErrAccess    uint16 = 2 // access violation
	tftpErrIllegal   uint16 = 4 // illegal TFTP operation
	tftpErrOptions   uint16 = 8 // the client refused the options (RFC 2347)
)

const (
	// tftpRequestSize is how much of a datagram at the TFTP port is read:
	// a request fits in 512 bytes (RFC 2347), and what is longer is cut
	// off, as pin/tftp, the server's TFTP library before, did.
	tftpRequestSize = 516
	// tftpDefaultBlockSize is the block size without the blksize option.
	tftpDefaultBlockSize = 512
	// tftpMinBlockSize and tftpMaxBlockSize bound the blksize option
	// honoured; a request for less or more is ignored (the transfer uses
	// 512-byte blocks). RFC 2348 allows down to 8, which would turn a file
	// into 64 times as many round trips.
	tftpMinBlockSize = 512
	tftpMaxBlockSize = 65464
	// tftpMaxErrorMessage bounds the message of an ERROR the server sends.
	tftpMaxErrorMessage = 200
)

// tftpOption is one option of a request or an OACK, as the client spelt
// its name.
type tftpOption struct{ name, value string }

// tftpRequest is a read or write request.
type tftpRequest struct {
	write    bool
	filename string
	mode     string
	options  []tftpOption
}

// errNotARequest: a datagram at the TFTP port that is no request.
var errNotARequest = errors.New("not a TFTP request")

// parseTFTPRequest parses a datagram at the TFTP port. It is as lenient as
// pin/tftp was, so the same datagrams are requests: a missing mode is an
// empty one, a mode cut off by the datagram size is what is left of it, an
// option with an empty value has that, and a last option name without a
// value is ignored. Anything else (too short, no NUL after the name,
// another opcode) is an error wrapping errNotARequest.
func parseTFTPRequest(p []byte) (tftpRequest, error) {
	if len(p) < 2 {
		return tftpRequest{}, fmt.Errorf("%w: %d bytes", errNotARequest, len(p))
	}
	op := binary.BigEndian.Uint16(p)
	if op != tftpOpRRQ && op != tftpOpWRQ {
		return tftpRequest{}, fmt.Errorf("%w: opcode %d", errNotARequest, op)
	}
	if len(p) < 4 {
		return tftpRequest{}, fmt.Errorf("%w: a request of %d bytes", errNotARequest, len(p))
	}
	fields := bytes.Split(p[2:], []byte{0})
	if len(fields) < 2 {
		return tftpRequest{}, fmt.Errorf("%w: missing file name or mode", errNotARequest)
	}
	rq := tftpRequest{write: op == tftpOpWRQ, filename: string(fields[0]), mode: string(fields[1])}
	for i := 2; i+1 < len(fields); i += 2 {
		rq.options = append(rq.options, tftpOption{name: string(fields[i]), value: string(fields[i+1])})
	}
	return rq, nil
}

// netascii reports whether the request asks for netascii mode.
func (rq tftpRequest) netascii() bool { return strings.EqualFold(rq.mode, "netascii") }

// negotiate answers the request's options for a file of size bytes: the
// block size to use, and the options of the OACK (none: no OACK, the
// transfer starts with DATA block 1). blksize is honoured between
// tftpMinBlockSize and tftpMaxBlockSize, capped at maxBlock; tsize gets
// the size, except in netascii mode, where the size sent differs from the
// file's. Other options are not answered, which refuses them.
func (rq tftpRequest) negotiate(size int64, maxBlock int) (blockSize int, oack []tftpOption) {
	blockSize = tftpDefaultBlockSize
	var blksize, tsize bool
	for _, o := range rq.options {
		switch strings.ToLower(o.name) {
		case "blksize":
			n, err := strconv.Atoi(o.value)
			if blksize || err != nil || n < tftpMinBlockSize || n > tftpMaxBlockSize {
				continue
			}
			blksize, blockSize = true, min(n, maxBlock)
			oack = append(oack, tftpOption{name: o.name, value: strconv.Itoa(blockSize)})
		case "tsize":
			if tsize || rq.netascii() {
				continue
			}
			tsize = true
			oack = append(oack, tftpOption{name: o.name, value: strconv.FormatInt(size, 10)})
		}
	}
	return blockSize, oack
}

// appendTFTPOACK appends an OACK packet to b.
func appendTFTPOACK(b []byte, opts []tftpOption) []byte {
	b = binary.BigEndian.AppendUint16(b, tftpOpOACK)
	for _, o := range opts {
		b = append(b, o.name...)
		b = append(b, 0)
		b = append(b, o.value...)
		b = append(b, 0)
	}
	return b
}

// appendTFTPError appends an ERROR packet to b.
func appendTFTPError(b []byte, code uint16, msg string) []byte {
	if len(msg) > tftpMaxErrorMessage {
		msg = msg[:tftpMaxErrorMessage]
	}
	b = binary.BigEndian.AppendUint16(b, tftpOpERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}

// tftpReply is what a client sends in a transfer: an ACK or an ERROR.
type tftpReply struct {
	op uint16
	// block is the ACK's block number or the ERROR's code.
	block uint16
	// message is the ERROR's message.
	message string
}

// parseTFTPReply parses a datagram from a transfer's client; ok is false
// for anything but an ACK or an ERROR.
func parseTFTPReply(p []byte) (r tftpReply, ok bool) {
	if len(p) < 4 {
		return tftpReply{}, false
	}
	r = tftpReply{op: binary.BigEndian.Uint16(p), block: binary.BigEndian.Uint16(p[2:])}
	switch r.op {
	case tftpOpACK:
		return r, true
	case tftpOpERROR:
		msg, _, _ := bytes.Cut(p[4:], []byte{0})
		r.message = string(msg)
		return r, true
	}
	return tftpReply{}, false
}
