// Package eintr retries system calls a signal interrupted, as the os
// package does inside its own calls.
package eintr

import (
	"errors"
	"syscall"
)

// Retry calls call until it returns anything but EINTR, and returns that.
func Retry(call func() error) error {
	for {
		if err := call(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
