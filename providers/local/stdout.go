package local

import (
	"bytes"
	"fmt"
)

// maxStdout is the most standard output local.exec records (its output
// stdout): 16 MiB. The engine records outputs in the state and sends them
// back to the provider with every later plan, update and delete, in
// messages of at most 64 MiB; a larger output is refused rather than
// recorded.
const maxStdout = 16 << 20

// cappedBuffer keeps the first max bytes written to it and drops the rest,
// so that a program that writes without end cannot take the provider's
// memory; it still takes everything, so the program is not stopped by a
// full pipe.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String returns what was kept.
func (b *cappedBuffer) String() string { return b.buf.String() }

// checkStdout refuses the standard output of a command if it is more than
// maxStdout bytes (runCommand keeps one byte more, so that is known).
func checkStdout(executable, stdout string) error {
	if len(stdout) <= maxStdout {
		return nil
	}
	return fmt.Errorf("run %s: it wrote more than %d MiB to standard output, the most local.exec records (as outputs.stdout); nothing was recorded. Write large output to a file and print its path instead", executable, maxStdout>>20)
}
