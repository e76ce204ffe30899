#!/usr/bin/env bash
# Makes what Landscaper's real-VM tests (landscaper/vmtest) boot and install,
# from Debian packages, without nixpkgs:
#
#   OUTDIR/installer/bzImage   Debian's generic kernel (linux-image-amd64)
#   OUTDIR/installer/initrd    the installer: a zstd newc cpio that is its
#                              whole root file system (see below)
#   OUTDIR/parts/              what the Nix stand-ins of
#                              landscaper/vmtest/testdata build from:
#     userland/bin, lib, share, etc   sshd, ssh-keygen, nix, sfdisk, mke2fs,
#                              extlinux, util-linux tools, a static busybox,
#                              and every library they need (flat in lib/;
#                              the Nix builders patchelf them into the store)
#     kernels/list             the kernel versions, the default one first
#     kernels/<ver>/bzImage, lib/modules/<ver>/..., modules-stage1,
#                  modules-stage2   a kernel with the few modules a QEMU VM
#                              needs, and the order to load them in
#   OUTDIR/rootfs/             the cache: `debootstrap --variant=minbase`
#                              of Debian 12 plus the packages below
#   OUTDIR/kernel-debs/        the cache: the kernel packages (.deb)
#
# The installer (what `landscaper serve` boots a new machine into) is a real
# Debian userland in RAM: OpenSSH's sshd and ssh-keygen, Debian's nix-bin
# (so a deployer can `nix copy --to ssh-ng://...`, which runs
# `nix-daemon --stdio` here, also with `?remote-store=local?root=/mnt`),
# sfdisk, mkfs.ext4 (e2fsprogs), wipefs, blkid, lsblk, util-linux's mount,
# umount, setsid and flock, dash as /bin/sh, and busybox for the rest
# (chroot, udhcpc, ip, insmod, init, reboot, ...). Its /init (PID 1) mounts proc, sys, dev and run, loads
# the drivers of QEMU's e1000 and virtio NICs and virtio disk and ext4,
# configures every network interface by DHCP (busybox udhcpc), writes the
# marker /etc/landscaper-installer (nixos.install wipes no disk of a machine
# without it), and hands over to busybox init, which keeps sshd running on
# port 22 and handles `reboot` (sync, unmount, reboot).
#
# sshd uses the host key /etc/ssh/ssh_host_ed25519_key and root's keys in
# /etc/ssh/authorized_keys.d/root or /root/.ssh/authorized_keys: the paths
# examples/install/params.nix gives the boot entry's `files` (hostKeyPath,
# authorizedKeysPath), which the pxe-nbp extra archive unpacks over the
# initrd. Without a host key, the installer makes one and prints its
# fingerprint on the console. Its /etc/nix/nix.conf is single-user root,
# no sandbox, no build users.
#
# Usage: scripts/vm-assets.sh OUTDIR          (as root)
#
# Idempotent and cached: the debootstrapped root file system and the kernel
# packages are made once (about 2 minutes, needs the Debian archive) and
# reused; the installer and the parts are remade (seconds, offline) only when
# this script or the cache changed, otherwise nothing is written. Several
# runs on the same OUTDIR wait for each other (flock OUTDIR/.lock).
#
# Environment: LANDSCAPER_VM_MIRROR (default: the archive this machine's apt
# uses for bookworm), LANDSCAPER_VM_SECURITY_MIRROR (default: apt's
# bookworm-security archive; "none" leaves it out). Two kernels are fetched: the newest
# linux-image-<abi>-amd64 and the one before it, so that systems with
# different kernels can be built; with only one available both are the same.
#
# Needs (Debian): debootstrap, cpio, zstd, kmod (depmod, modprobe); all in
# scripts/install-deps.sh.
set -euo pipefail
export LC_ALL=C
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

say() { printf 'vm-assets: %s\n' "$*"; }
die() { printf 'vm-assets: error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install $2 (scripts/install-deps.sh installs it)"; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
[ "$(id -u)" -eq 0 ] || die "run this as root: it debootstraps and chroots"
need debootstrap debootstrap
need cpio cpio
need zstd zstd
need depmod kmod
need modprobe kmod
need sha256sum coreutils

out=$(realpath -m "$1")
mkdir -p "$out"
exec 9>"$out/.lock"
if ! flock -n 9; then
	say "waiting for another run on $out"
	flock 9
fi

suite=bookworm
# The archive this machine's apt uses (deb822 .sources or sources.list),
# unless told otherwise: the URI of the first entry whose suites match $1.
apt_uri() {
	local want=$1
	{
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v want="$want" '
			/^URIs:/ { uri = $2 } /^Suites:/ { if ($0 ~ want) { print uri; exit } }'
		grep -hsE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
			awk -v want="$want" '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) ~ want) print $i; break } }'
	} | head -n1 || true
}
mirror=${LANDSCAPER_VM_MIRROR:-$(apt_uri ' bookworm( |$)')}
security=${LANDSCAPER_VM_SECURITY_MIRROR:-$(apt_uri 'bookworm-security')}
[ -n "$mirror" ] || die "no Debian archive found in /etc/apt (set LANDSCAPER_VM_MIRROR)"
[ -n "$security" ] || security=none
# What the chroot gets beyond minbase: openssh-server (sshd, ssh-keygen,
# sftp-server), nix-bin, e2fsprogs (mke2fs), fdisk (sfdisk), util-linux and
# mount (wipefs, blkid, lsblk, setsid, flock, mount), busybox-static (init,
# sh, udhcpc, insmod, ...), extlinux and syslinux-common (the boot loader of
# the stand-in systems and its MBR).
packages=(openssh-server nix-bin e2fsprogs fdisk util-linux mount busybox-static extlinux syslinux-common)
script_sum=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)
started=$(date +%s)

# ---------------------------------------------------------------------------
# 1. The root file system: debootstrap, then apt in the chroot.
rootfs=$out/rootfs
rootfs_stamp=$(printf '%s\n' "rootfs v1" "$suite" "$mirror" "$security" "${packages[*]}" | sha256sum | cut -c1-16)
if [ -f "$rootfs/.landscaper-stamp" ] && [ "$(cat "$rootfs/.landscaper-stamp")" = "$rootfs_stamp" ]; then
	say "reusing the root file system $rootfs (made $(date -u -r "$rootfs/.landscaper-stamp" '+%Y-%m-%d %H:%M UTC'))"
else
	tmp=$out/rootfs.tmp
	rm -rf "$tmp"
	say "debootstrap --variant=minbase $suite $tmp $mirror (about a minute)"
	if ! debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$out/debootstrap.log" 2>&1; then
		tail -n 30 "$out/debootstrap.log" >&2
		die "debootstrap failed (whole log: $out/debootstrap.log)"
	fi
	{
		printf 'deb %s %s main\n' "$mirror" "$suite"
		if [ "$security" != none ]; then printf 'deb %s %s-security main\n' "$security" "$suite"; fi
	} >"$tmp/etc/apt/sources.list"
	# No service is started in the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 0755 "$tmp/usr/sbin/policy-rc.d"
	say "apt-get install ${packages[*]} (in the chroot)"
	if ! { chroot "$tmp" apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -q --no-install-recommends "${packages[@]}"; } >"$out/apt.log" 2>&1; then
		tail -n 30 "$out/apt.log" >&2
		die "apt-get in the chroot failed (whole log: $out/apt.log)"
	fi
	chroot "$tmp" apt-get clean
	printf '%s\n' "$rootfs_stamp" >"$tmp/.landscaper-stamp"
	rm -rf "$rootfs"
	mv "$tmp" "$rootfs"
	say "made $rootfs ($(du -sh "$rootfs" | cut -f1))"
fi

# ---------------------------------------------------------------------------
# 2. The kernels: the newest linux-image-<abi>-amd64 and the one before.
debs=$out/kernel-debs
kernels_stamp=$(printf '%s\n' "kernels v2" "$rootfs_stamp" | sha256sum | cut -c1-16)
if [ -f "$debs/.landscaper-stamp" ] && [ "$(cat "$debs/.landscaper-stamp")" = "$kernels_stamp" ]; then
	say "reusing the kernels in $debs: $(tr '\n' ' ' <"$debs/list")"
else
	tmp=$out/kernel-debs.tmp
	rm -rf "$tmp" "$rootfs/tmp/landscaper-kernels"
	mkdir -p "$tmp" "$rootfs/tmp/landscaper-kernels"
	chroot "$rootfs" apt-get update -q >"$out/apt.log" 2>&1 || { tail -n 20 "$out/apt.log" >&2; die "apt-get update in the chroot failed"; }
	mapfile -t names < <(chroot "$rootfs" apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-amd64$' |
		awk '{print $1}' | sort -V | tail -n 2 | sort -rV)
	[ "${#names[@]}" -ge 1 ] || die "the archive has no linux-image-<abi>-amd64 package"
	say "downloading ${names[*]}"
	chroot "$rootfs" sh -c 'cd /tmp/landscaper-kernels && apt-get download -q "$@"' sh "${names[@]}" >"$out/apt.log" 2>&1 ||
		{ tail -n 20 "$out/apt.log" >&2; die "apt-get download ${names[*]} failed"; }
	: >"$tmp/list"
	for name in "${names[@]}"; do
		deb=$(ls "$rootfs/tmp/landscaper-kernels/${name}_"*.deb)
		ver=${name#linux-image-}
		mv "$deb" "$tmp/$ver.deb"
		printf '%s %s\n' "$ver" "$(dpkg-deb -f "$tmp/$ver.deb" Version)" >>"$tmp/list"
	done
	# With one kernel in the archive, the second is the same.
	[ "${#names[@]}" -ge 2 ] || head -n 1 "$tmp/list" >>"$tmp/list"
	rm -rf "$rootfs/tmp/landscaper-kernels"
	printf '%s\n' "$kernels_stamp" >"$tmp/.landscaper-stamp"
	rm -rf "$debs"
	mv "$tmp" "$debs"
	say "downloaded the kernels into $debs: $(awk '{print $1 " (" $2 ")"}' "$debs/list" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------------------
# 3. The installer and the parts, made from the cache. Rebuilt when this
# script or the cache changed.
derived_stamp=$(printf '%s\n' "derived v1" "$script_sum" "$rootfs_stamp" "$kernels_stamp" | sha256sum | cut -c1-16)
if [ -f "$out/.derived-stamp" ] && [ "$(cat "$out/.derived-stamp")" = "$derived_stamp" ] &&
	[ -f "$out/installer/bzImage" ] && [ -f "$out/installer/initrd" ] && [ -f "$out/parts/kernels/list" ]; then
	say "$out is up to date: installer/bzImage, installer/initrd ($(stat -c %s "$out/installer/initrd") bytes), parts/ (kernels $(awk '{print $1}' "$out/parts/kernels/list" | tr '\n' ' '))"
	exit 0
fi

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

default_ver=$(awk 'NR == 1 {print $1}' "$debs/list")
# The kernels, extracted, with their modules.dep.
kernels=$work/kernels
while read -r ver version; do
	[ -d "$kernels/$ver" ] && continue
	mkdir -p "$kernels/$ver"
	dpkg-deb -x "$debs/$ver.deb" "$kernels/$ver"
	[ -f "$kernels/$ver/boot/vmlinuz-$ver" ] || die "$debs/$ver.deb has no boot/vmlinuz-$ver"
	depmod -b "$kernels/$ver" "$ver"
done <"$debs/list"
# The drivers the VMs need: the virtio disk and ext4 to mount the root file
# system (stage 1), the NICs (stage 2). crc32c is ext4's checksum
# (metadata_csum); modprobe lists crc32c-intel too, whose load fails
# harmlessly on a CPU without SSE 4.2.
stage1_modules=(virtio_pci virtio_blk ext4 crc32c_generic)
stage2_modules=(e1000 virtio_net)

# modules_of VER MODULE... prints the .ko files to insmod, dependencies
# first, each once, relative to lib/modules/VER.
modules_of() {
	local ver=$1 m
	shift
	for m in "$@"; do
		modprobe -d "$kernels/$ver" -S "$ver" --show-depends "$m" || die "kernel $ver has no module $m"
	done | awk -v base="$kernels/$ver/lib/modules/$ver/" '$1 == "insmod" { f = $2; sub("^" base, "", f); if (!seen[f]++) print f }'
}

# copy_modules VER DEST STAGE MODULE...: the modules and their load order
# (DEST/modules-STAGE) under DEST/lib/modules/VER.
copy_modules() {
	local ver=$1 dest=$2 stage=$3 f
	shift 3
	modules_of "$ver" "$@" >"$dest/modules-$stage"
	while read -r f; do
		mkdir -p "$dest/lib/modules/$ver/$(dirname "$f")"
		cp "$kernels/$ver/lib/modules/$ver/$f" "$dest/lib/modules/$ver/$f"
	done <"$dest/modules-$stage"
}

# libs_of PATH prints the shared libraries PATH (inside the chroot) loads,
# as paths inside the chroot, the dynamic loader included.
libs_of() {
	chroot "$rootfs" ldd "$1" 2>/dev/null | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }'
}

# The programs both the installer and the parts carry.
programs=(
	/usr/bin/dash
	/usr/sbin/sshd /usr/bin/ssh-keygen /usr/lib/openssh/sftp-server
	/usr/bin/nix
	/usr/sbin/sfdisk /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/tune2fs
	/usr/sbin/wipefs /usr/sbin/blkid /usr/bin/lsblk /usr/bin/findmnt /usr/sbin/blockdev
	/usr/bin/mount /usr/bin/umount /usr/bin/setsid /usr/bin/flock
)
# glibc's threads load libgcc_s when a thread is cancelled; nix's C++ needs
# it too. nix dlopens libnss_dns (a stub since glibc 2.34) and warns
# without it.
extra_libs=(/usr/lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libnss_dns.so.2 /usr/lib/x86_64-linux-gnu/libnss_files.so.2)
busybox=$rootfs/usr/bin/busybox
case "$(file -L "$busybox" 2>/dev/null || echo static)" in
*"dynamically linked"*) die "$busybox is dynamically linked; the chroot needs busybox-static" ;;
esac

# --- 3a. The installer's root file system.
say "assembling the installer"
root=$work/installer-root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/share,etc,proc,sys,dev,run,tmp,root,mnt,var/empty,nix}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

# copy_into ROOT PATH: PATH from the chroot to the same path under ROOT,
# symlinks followed (through the usrmerge links of ROOT).
copy_into() {
	local dest=$1/${2#/}
	mkdir -p "$(dirname "$dest")"
	[ -e "$dest" ] || cp -L "$rootfs$2" "$dest"
}
for p in "${programs[@]}"; do
	copy_into "$root" "$p"
	for l in $(libs_of "$p"); do copy_into "$root" "$l"; done
done
for l in "${extra_libs[@]}"; do copy_into "$root" "$l"; done
for n in nix-build nix-channel nix-collect-garbage nix-copy-closure nix-daemon nix-env nix-hash nix-instantiate nix-prefetch-url nix-shell nix-store; do
	ln -s nix "$root/usr/bin/$n"
done
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
ln -s e2fsck "$root/usr/sbin/fsck.ext4"
cp "$busybox" "$root/usr/bin/busybox"
# /bin/sh is dash: busybox's sh runs its own applets (umount, mount, ...)
# before the real programs on PATH.
ln -s dash "$root/usr/bin/sh"
# Busybox's applets for everything the real programs above do not provide.
while read -r applet; do
	p=$root/$applet
	mkdir -p "$(dirname "$p")"
	[ -e "$p" ] || [ -L "$p" ] || ln -s /usr/bin/busybox "$p"
done < <("$busybox" --list-full)
copy_into "$root" /etc/mke2fs.conf
copy_into "$root" /etc/ssh/moduli

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534:sshd privilege separation:/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
chmod 0600 "$root/etc/shadow"
printf 'landscaper-installer\n' >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
mkdir -p "$root/etc/nix"
cat >"$root/etc/nix/nix.conf" <<'EOF'
# The landscaper installer: nix for root alone, no daemon, no build users,
# no sandbox. A deployer copies into it (or into /mnt) over ssh-ng.
build-users-group =
sandbox = false
experimental-features = nix-command
EOF
mkdir -p "$root/etc/ssh/authorized_keys.d"
cat >"$root/etc/ssh/sshd_config" <<'EOF'
# The landscaper installer's sshd. The host key and root's authorized keys
# come from the boot entry's extra archive (pxe-nbp `files`).
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PidFile /run/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
mkdir -p "$root/usr/share/udhcpc"
cat >"$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# busybox udhcpc's hook: configure the interface with the lease.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	: >/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	echo "landscaper: $interface has address $ip/${mask:-24}, router ${router:-none}" >/dev/console
	;;
esac
exit 0
EOF
chmod 0755 "$root/usr/share/udhcpc/default.script"
cat >"$root/etc/inittab" <<'EOF'
# busybox init, once /init has set the installer up.
::respawn:/usr/sbin/sshd -D -e
::askfirst:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r
::restart:/sbin/init
EOF
copy_modules "$default_ver" "$root" installer "${stage1_modules[@]}" "${stage2_modules[@]}"
mv "$root/modules-installer" "$root/etc/landscaper-modules"

cat >"$root/init" <<'EOF'
#!/bin/sh
# The landscaper installer's PID 1 (scripts/vm-assets.sh). Sets the machine
# up, then becomes busybox init, which runs sshd (/etc/inittab).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# The kernel unpacks the initrd into a tmpfs whose root is mode 1777;
# sshd's StrictModes refuses keys under a world-writable /.
chmod 0755 /
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/sshd
echo "landscaper-installer: starting ($(uname -r))"
hostname -F /etc/hostname
kver=$(uname -r)
while read -r m; do
	insmod "/lib/modules/$kver/$m" 2>/dev/null || true
done </etc/landscaper-modules
# What the extra archive unpacked: sshd wants its key private, and the
# archive gives the directories above its files mode 0755.
if [ -f /etc/ssh/ssh_host_ed25519_key ]; then
	chmod 0600 /etc/ssh/ssh_host_ed25519_key
	echo "landscaper-installer: host key from the boot entry: $(ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key)"
else
	ssh-keygen -q -t ed25519 -N '' -C landscaper-installer -f /etc/ssh/ssh_host_ed25519_key
	echo "landscaper-installer: no host key in the boot entry; made $(ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key)"
fi
chmod 0700 /root
for f in /etc/ssh/authorized_keys.d/root /root/.ssh/authorized_keys; do
	[ -f "$f" ] && echo "landscaper-installer: root's authorized keys from $f: $(grep -c . "$f")"
done
ip link set lo up
for dev in /sys/class/net/*; do
	ifc=${dev##*/}
	[ "$ifc" = lo ] && continue
	ip link set "$ifc" up
	# -b: go on (and keep asking in the background) without a lease.
	udhcpc -i "$ifc" -b -t 10 -T 2 -S -s /usr/share/udhcpc/default.script -x hostname:landscaper-installer
done
# The marker nixos.install's pre-flight looks for: only a machine running
# this installer may have its disks wiped.
printf 'landscaper installer\nkernel %s\n' "$kver" >/etc/landscaper-installer
echo "landscaper-installer: ready; sshd starts on port 22"
exec /sbin/init
EOF
chmod 0755 "$root/init"

find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | sort | cpio --quiet -o -H newc --owner=0:0 --reproducible) |
	zstd -q -T0 -12 >"$work/initrd"
mkdir -p "$work/installer"
mv "$work/initrd" "$work/installer/initrd"
cp "$kernels/$default_ver/boot/vmlinuz-$default_ver" "$work/installer/bzImage"
printf '%s\n' "$default_ver" >"$work/installer/kernel-version"
chmod 0644 "$work/installer/"*

# --- 3b. The parts of the Nix stand-ins.
say "assembling the parts of the stand-in systems"
parts=$work/parts
mkdir -p "$parts/userland/bin" "$parts/userland/lib" "$parts/userland/share/syslinux" "$parts/userland/etc/ssh" "$parts/kernels"
for p in "${programs[@]}" /usr/bin/extlinux; do
	cp -L "$rootfs$p" "$parts/userland/bin/"
	for l in $(libs_of "$p"); do
		[ -e "$parts/userland/lib/${l##*/}" ] || cp -L "$rootfs$l" "$parts/userland/lib/"
	done
done
for l in "${extra_libs[@]}"; do cp -L "$rootfs$l" "$parts/userland/lib/"; done
cp "$busybox" "$parts/userland/bin/busybox"
cp "$rootfs/usr/lib/syslinux/mbr/mbr.bin" "$parts/userland/share/syslinux/mbr.bin"
cp "$rootfs/etc/mke2fs.conf" "$parts/userland/etc/mke2fs.conf"
cp "$rootfs/etc/ssh/moduli" "$parts/userland/etc/ssh/moduli"
: >"$parts/kernels/list"
while read -r ver version; do
	[ -d "$parts/kernels/$ver" ] || {
		mkdir -p "$parts/kernels/$ver"
		cp "$kernels/$ver/boot/vmlinuz-$ver" "$parts/kernels/$ver/bzImage"
		copy_modules "$ver" "$parts/kernels/$ver" stage1 "${stage1_modules[@]}"
		copy_modules "$ver" "$parts/kernels/$ver" stage2 "${stage2_modules[@]}"
		printf '%s\n' "$version" >"$parts/kernels/$ver/package-version"
	}
	printf '%s\n' "$ver" >>"$parts/kernels/list"
done <"$debs/list"
chmod -R u+w,go-w "$parts"

# --- Publish.
rm -rf "$out/installer" "$out/parts"
mv "$work/installer" "$out/installer"
mv "$parts" "$out/parts"
printf '%s\n' "$derived_stamp" >"$out/.derived-stamp"
say "wrote $out/installer/bzImage (kernel $default_ver, $(stat -c %s "$out/installer/bzImage") bytes)"
say "wrote $out/installer/initrd ($(stat -c %s "$out/installer/initrd") bytes zstd, $(du -sb "$root" | cut -f1) bytes unpacked)"
say "wrote $out/parts (kernels $(tr '\n' ' ' <"$out/parts/kernels/list"); $(du -sh "$out/parts" | cut -f1))"
say "done in $(($(date +%s) - started)) s"
