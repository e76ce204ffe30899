package bootserver

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkTFTP fetches a 20 MB initrd over loopback TFTP with pin/tftp's
// client at several block sizes.
func BenchmarkTFTP(b *testing.B) {
	f := newFixture(b, nil)
	data := randomBytes(20<<20, 20)
	v := f.putEntry(testMAC, []byte("k"), [][]byte{data}, "", nil)
	name := versionFileName(v.MAC, v.ID, "initrd/0")
	for _, blksize := range []int{512, 1468, 8192, 65464} {
		b.Run(fmt.Sprint(blksize), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				got, _, err := tftpGet(f.tftpAddr(), name, blksize, true)
				if err != nil || len(got) != len(data) {
					b.Fatalf("%d bytes, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkHTTP fetches the same initrd over loopback HTTP.
func BenchmarkHTTP(b *testing.B) {
	f := newFixture(b, nil)
	data := randomBytes(20<<20, 20)
	v := f.putEntry(testMAC, []byte("k"), [][]byte{data}, "", nil)
	url := f.httpBase() + versionFileName(v.MAC, v.ID, "initrd/0")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}
