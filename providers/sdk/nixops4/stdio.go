package nixops4

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// ServeStdio serves p to NixOps4 on this process's stdin and stdout until
// stdin ends or the process is interrupted. Before it reads anything it
// moves the protocol to private descriptors and points stdin at /dev/null
// and stdout at stderr, as NixOps4's own providers do, so that nothing
// the provider or a program it runs prints can corrupt the protocol.
func ServeStdio(p resource.Provider) error {
	in, out, err := takeStdio()
	if err != nil {
		return err
	}
	defer in.Close()
	defer out.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Serve(ctx, p, in, out, os.Stderr)
}

func takeStdio() (in, out *os.File, err error) {
	inFd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, nil, fmt.Errorf("take stdin: %w", err)
	}
	outFd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		unix.Close(inFd)
		return nil, nil, fmt.Errorf("take stdout: %w", err)
	}
	devNull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Dup3(devNull, 0, 0)
		unix.Close(devNull)
	}
	if err == nil {
		err = unix.Dup3(2, 1, 0)
	}
	if err != nil {
		unix.Close(inFd)
		unix.Close(outFd)
		return nil, nil, fmt.Errorf("redirect stdin and stdout: %w", err)
	}
	return os.NewFile(uintptr(inFd), "nixops4-requests"), os.NewFile(uintptr(outFd), "nixops4-responses"), nil
}
