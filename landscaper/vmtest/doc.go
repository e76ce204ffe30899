// Package vmtest installs NixOS-like systems onto the disks of real QEMU
// machines. A VM with an empty virtio disk and network boot first boots
// Landscaper's installer from `landscaper serve` through the iPXE ROM of
// its e1000 card; the deployer reaches the installer's sshd through a QEMU
// user-net port forward on 127.0.0.1.
//
// TestInstallAndBootFromDisk does the installation by hand, step by step:
// a disko stand-in partitions and formats the disk, `nix copy` over ssh-ng
// fills /mnt, the system's own switch-to-configuration installs the boot
// loader in a chroot, and the VM reboots into its disk (also through
// iPXE's sanboot). TestInstallExampleOnAVM runs examples/install with
// `landscaper apply` against a VM that is powered on first: one apply
// installs it (keys, boot entry, host-key wait and rotation,
// nixos.install, nixos.system), then updates with a health check, a
// rollback, a reboot for a new kernel and a re-installation
// (--replace server.installerHostKey) follow.
//
// Its tests (there is no other code) use real components throughout: the
// kernel and the installer that scripts/vm-assets.sh makes from Debian
// packages (debootstrapped once into a cache, /var/cache/landscaper-vm
// unless LANDSCAPER_VM_CACHE names another), the stand-in systems of
// testdata/ (built by nix without nixpkgs), OpenSSH, nix, QEMU, SeaBIOS,
// iPXE and extlinux.
//
// They need root, network access to Debian's archive on the first run (to
// fill the cache; later runs are offline), and Debian's qemu-system-x86,
// qemu-utils, ipxe-qemu, ipxe, nix-bin, openssh-client, debootstrap, cpio,
// zstd, kmod and patchelf (scripts/install-deps.sh installs them); they
// fail, naming what is missing, without them. They are skipped with
// -short. QEMU uses KVM when /dev/kvm can run ordinary guests, and TCG
// otherwise (LANDSCAPER_VM_ACCEL=kvm or tcg decides). Each VM's serial
// console is logged to a file, shown when a test fails. Phases are named
// and timed in the test log (-v).
//
//	go test -count=1 -v ./landscaper/vmtest/
package vmtest
