// Command landscaper-demo-server is the simulated new server of `make demo`
// (scripts/demo.sh): the stand-in host of Landscaper's tests
// (internal/testhost), booted from `landscaper serve` the way the install
// test boots it. It asks the boot server for its MAC's script until the
// machine has an entry, fetches the entry's files with curl, unpacks the
// extra initrd with cpio, and starts OpenSSH's sshd in a mount namespace of
// its own (its own /nix, /run and /etc/ssh) with the host key and root's
// authorized_keys found there. It runs until SIGTERM or SIGINT, then stops
// every process of the server, removes its files and exits 0.
//
//	landscaper-demo-server --boot-url tftp://127.0.0.1:6969/ --mac 52:54:00:6c:73:02 --ssh-port 2222 --dir /tmp/server
//	landscaper-demo-server free-port    # prints a loopback TCP port nothing listens on
//
// It needs root, util-linux, openssh-server, curl and cpio. It is not part
// of Landscaper: `make build` does not build it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("server: ")
	if len(os.Args) == 2 && os.Args[1] == "free-port" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		return
	}
	bootURL := flag.String("boot-url", "", "the boot server's root `URL`, tftp://... or http://...")
	mac := flag.String("mac", "", "the server's MAC `address`")
	port := flag.Int("ssh-port", 0, "the loopback `port` sshd listens on")
	dir := flag.String("dir", "", "a `directory` for the server's files (created; removed on exit)")
	timeout := flag.Duration("timeout", 10*time.Minute, "how long to wait for a boot entry")
	flag.Parse()
	if *bootURL == "" || *mac == "" || *port == 0 || *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bootURL, *mac, *port, *dir, *timeout); err != nil {
		log.Printf("error: %v", err)
		os.Exit(1)
	}
}

func run(bootURL, mac string, port int, dir string, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	bootDir := filepath.Join(dir, "boot")
	if err := os.MkdirAll(bootDir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	log.Printf("powered on: MAC %s, booting from %s", mac, bootURL)
	bctx, cancel := context.WithTimeout(ctx, timeout)
	boot, err := testhost.NetBoot(bctx, testhost.BootOptions{URL: bootURL, MAC: mac, Dir: bootDir, Logf: log.Printf})
	cancel()
	if ctx.Err() != nil {
		log.Printf("stopped before booting")
		return nil
	}
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey([]byte(boot.HostKey))
	if err != nil {
		return fmt.Errorf("the host key in the extra initrd: %w", err)
	}
	host, err := testhost.Launch(testhost.Options{
		HostKey: boot.HostKey, AuthorizedKeys: boot.AuthorizedKeys, Port: port, Dir: filepath.Join(dir, "host"),
	})
	// The unpacked initrd holds the private host key; the running server
	// keeps its own copy in its /etc/ssh.
	os.RemoveAll(bootDir)
	if err != nil {
		return err
	}
	ns := host.Namespace()
	log.Printf("sshd listening on %s:%d with the host key from the boot entry, %s", host.Address, host.Port, ssh.FingerprintSHA256(signer.PublicKey()))

	<-ctx.Done()
	log.Printf("shutting down")
	host.Close()
	if left := testhost.InNamespace(ns); len(left) > 0 {
		return fmt.Errorf("processes %v are still running in the server's mount namespace", left)
	}
	log.Printf("stopped: no process left in the server's mount namespace, its files removed")
	return nil
}
