package bootserver

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestPaddedContent(t *testing.T) {
	for _, size := range []int{0, 1, 3, 4, 5, 4097} {
		data := bytes.Repeat([]byte("x"), size)
		c := &content{body: bytes.NewReader(data), size: int64(size)}
		c.padTo4()
		if c.size%4 != 0 || c.size < int64(size) || c.size-int64(size) >= 4 {
			t.Fatalf("size %d padded to %d", size, c.size)
		}
		got, err := io.ReadAll(c.body)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([]byte{}, data...), make([]byte, int(c.size)-size)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: read %q", size, got)
		}
		// Seeking back (HTTP ranges, TFTP retransmits) reads the same.
		if _, err := c.body.Seek(int64(size/2), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(c.body)
		if !bytes.Equal(rest, want[size/2:]) {
			t.Fatalf("size %d: after a seek read %q", size, rest)
		}
		if end, _ := c.body.Seek(0, io.SeekEnd); end != c.size {
			t.Fatalf("size %d: end at %d, want %d", size, end, c.size)
		}
	}
	// A short file (changed under the server) is an error, not zeros.
	p := &padded{file: strings.NewReader("ab"), size: 5, total: 8}
	if _, err := io.ReadAll(p); err == nil {
		t.Fatal("a file shorter than its size read without error")
	}
}
