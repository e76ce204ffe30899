package bootserver

import (
	"errors"
	"io"
)

// initrdAlign is the size every initrd is served padded to a multiple of.
// The kernel's EFI stub loads the initrds named by initrd= arguments and
// joins them without aligning them; an initrd whose size is not a
// multiple of 4 bytes leaves the next one misaligned, and the kernel stops
// unpacking there ("invalid magic at start of compressed archive"): the
// extra archive with the host key is lost. Zeros after an archive are
// skipped by the kernel, so padding costs nothing under BIOS either.
const initrdAlign = 4

// padded serves a file followed by zeros up to a size.
type padded struct {
	file io.ReadSeeker
	// size is the file's size; total is size with the zeros.
	size, total int64
	off         int64
}

// padTo4 makes the content end with zeros up to a multiple of 4 bytes.
func (c *content) padTo4() {
	total := (c.size + initrdAlign - 1) / initrdAlign * initrdAlign
	if total == c.size {
		return
	}
	c.body = &padded{file: c.body, size: c.size, total: total}
	c.size = total
}

func (p *padded) Read(b []byte) (int, error) {
	if p.off >= p.total {
		return 0, io.EOF
	}
	if p.off < p.size {
		if _, err := p.file.Seek(p.off, io.SeekStart); err != nil {
			return 0, err
		}
		n, err := p.file.Read(b[:min(int64(len(b)), p.size-p.off)])
		p.off += int64(n)
		if errors.Is(err, io.EOF) && p.off < p.size {
			return n, io.ErrUnexpectedEOF
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		return n, nil
	}
	n := int(min(int64(len(b)), p.total-p.off))
	clear(b[:n])
	p.off += int64(n)
	return n, nil
}

func (p *padded) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = p.off + offset
	case io.SeekEnd:
		abs = p.total + offset
	default:
		return 0, errors.New("padded: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("padded: negative position")
	}
	p.off = abs
	return abs, nil
}
