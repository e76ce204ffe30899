#!/usr/bin/env bash
# Installs what Landscaper's build and tests need on Debian (run as root) and
# makes sure nix works for root in single-user mode, without a daemon.
# Idempotent: a second run changes nothing and only checks.
set -euo pipefail

export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run this as root: it installs packages and sets up /nix"
command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian"

# libc6-dev is only a Recommends of gcc, but cgo (go test -race) needs it.
# openssh-server/-client: the ssh-keypair tests log in to a real sshd; cpio:
# the pxe-nbp tests unpack the archives the provider writes.
packages=(nix-bin git make gcc libc6-dev ca-certificates openssh-server openssh-client cpio)
# sudo: the nixos provider's tests log in to stand-in hosts as a user other
# than root whose commands go through sudo -n (internal/testhost).
packages+=(sudo)
# The network boot tests (landscaper/netboottest) boot QEMU from
# `landscaper serve`: qemu-system-x86 (the VM), ipxe-qemu (its iPXE NIC
# ROMs), ipxe (the iPXE binaries the server serves), and for the kernel and
# initrd that scripts/netboot-assets.sh makes: linux-image-cloud-amd64 (the
# kernel; its postinst runs update-initramfs, which works non-interactively),
# busybox-static, cpio and gzip.
packages+=(qemu-system-x86 ipxe-qemu ipxe linux-image-cloud-amd64 busybox-static gzip)
# The UEFI network boots (landscaper/netboottest TestBootUEFI): Debian's
# OVMF firmware, with ipxe-qemu's efi-e1000.rom.
packages+=(ovmf)
# scripts/bench-pxe.sh compares `landscaper serve` with tftpd-hpa, with curl
# as the client of both (TFTP with --tftp-blksize, and HTTP). curl is also
# how the simulated server of `make demo` and landscaper/installtest fetches
# its boot entry.
packages+=(tftpd-hpa curl)
# The PostgreSQL state backend's tests (landscaper/state/pgstate) start a
# real PostgreSQL server (initdb and postgres from /usr/lib/postgresql/*/bin).
packages+=(postgresql)
# The real-VM install tests (landscaper/vmtest) and scripts/vm-assets.sh,
# which makes their installer and the parts of their stand-in systems:
# debootstrap (a Debian 12 minbase root file system in a cache, into which
# apt installs openssh-server, nix-bin, e2fsprogs, fdisk, extlinux,
# syslinux-common and busybox-static: the host needs none of those itself),
# zstd (compresses the installer's initrd), kmod (depmod and
# modprobe --show-depends pick the kernel modules the VMs load), patchelf
# (the Nix builders of landscaper/vmtest/testdata point the Debian programs
# they copy into the store at the libraries copied beside them), qemu-utils
# (qemu-img makes the VMs' empty qcow2 disks).
packages+=(debootstrap zstd kmod patchelf qemu-utils)
# The Python example provider (examples/provider-python, run by
# landscaper/providertest): Debian's gRPC and protobuf for Python, and
# cryptography for its TLS certificate (go-plugin's mutual TLS);
# python3-grpc-tools makes its stubs from proto/ (make generate, and the
# test that checks they are current).
packages+=(python3-grpcio python3-protobuf python3-cryptography python3-grpc-tools)
# The nixos provider's tests under a real systemd
# (providers/nixos/systemdtest, and the pull agent's unit in
# landscaper/packagingtest): systemd-container (systemd-nspawn boots a
# Debian root with systemd as its PID 1, made by scripts/systemd-rootfs.sh
# from vm-assets.sh's cached root with debootstrap's packages) and iproute2
# (the veth link to the container is addressed, and cut, with ip).
packages+=(systemd-container iproute2)
# landscaper/packagingtest checks the NixOS modules' unit files with
# systemd-analyze verify and their tmpfiles rules with systemd-tmpfiles
# (both from systemd, which systemd-container depends on anyway).
packages+=(systemd)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	say "installing ${missing[*]} (apt)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	say "packages already installed: ${packages[*]}"
fi

# Go is not installed by this script; it is expected in /usr/local/go.
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go; see https://go.dev/doc/install)"
say "$(go version)"

# nix, single-user for root. Debian's nix-bin alone (without the recommended
# nix-setup-systemd) has no /etc/nix/nix.conf, so nix would default to the
# build sandbox and the nixbld build users. Root writes the store directly.
if [ ! -d /nix ]; then
	say "creating /nix"
	mkdir -m 0755 /nix
fi
if [ ! -e /etc/nix/nix.conf ]; then
	say "writing /etc/nix/nix.conf (single-user nix for root: no build users, no sandbox)"
	mkdir -p /etc/nix
	cat >/etc/nix/nix.conf <<'EOF'
# Written by Landscaper's scripts/install-deps.sh: single-user nix for root,
# no daemon. Builds run as root (no nixbld users) and without the sandbox,
# as in Debian's nix-setup-systemd configuration.
build-users-group =
sandbox = false
EOF
fi

# A configuration that names build users whose group does not exist: create
# them as Debian's nix-setup-systemd does.
group=$(nix --extra-experimental-features nix-command show-config 2>/dev/null |
	awk -F' = ' '$1 == "build-users-group" { print $2 }' || true)
if [ -n "$group" ] && ! getent group "$group" >/dev/null; then
	say "creating the build users group $group and ${group}1..10 (named by nix.conf)"
	groupadd --force --system "$group"
	for n in $(seq 1 10); do
		id "$group$n" >/dev/null 2>&1 ||
			useradd --system --comment "Nix build user $n" --home-dir /var/empty \
				--gid "$group" --groups "$group" --no-user-group \
				--shell "$(command -v nologin || echo /usr/sbin/nologin)" "$group$n"
	done
fi

if [ "${NIX_REMOTE:-}" = daemon ]; then
	say "note: NIX_REMOTE=daemon is set; the checks below run with it unset (root uses the store directly)"
fi

# Check: nix evaluates, and can build a trivial derivation into the store.
if ! out=$(env -u NIX_REMOTE nix-instantiate --eval -E 1 2>&1) || [ "$out" != 1 ]; then
	die "nix-instantiate --eval -E 1 failed: $out"
fi
probe='derivation { name = "landscaper-install-deps-probe"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; }'
if ! out=$(env -u NIX_REMOTE nix-build --no-out-link --option substituters '' -E "$probe" 2>&1); then
	die "nix cannot build a trivial derivation as root (check /etc/nix/nix.conf: sandbox, build-users-group):
$out"
fi
say "nix works for root without a daemon: $(nix-instantiate --version), store $(dirname "${out##*$'\n'}")"
say "done"
