// Package netboottest proves Landscaper's network boot with a real
// firmware. Its tests (there is no other code) apply a deployment with a
// pxe-nbp.entry, run `landscaper serve`, and boot QEMU through the iPXE ROM
// of its network card into a Linux kernel and a busybox initrd (made by
// scripts/netboot-assets.sh), which print their kernel command line and a
// file the entry put into the initrd on the serial console.
//
// The tests need Debian's qemu-system-x86, ipxe-qemu, ipxe,
// linux-image-cloud-amd64, busybox-static, cpio and gzip
// (scripts/install-deps.sh installs them) and fail, naming the package,
// when one is missing. They run the VMs one after the other, under TCG
// (LANDSCAPER_NETBOOT_ACCEL=kvm uses KVM instead), each bounded by a
// deadline.
//
//	go test -count=1 ./landscaper/netboottest/
package netboottest
