#!/usr/bin/env bash
# Makes the kernel and the initrd that the network boot tests
# (landscaper/netboottest) and anyone trying `landscaper serve` by hand boot
# in QEMU:
#
#   OUTDIR/vmlinuz    a copy of Debian's cloud kernel (linux-image-cloud-amd64)
#   OUTDIR/initrd.gz  a busybox initrd (busybox-static), newc cpio, gzip
#
# The initrd's /init mounts proc, sys and devtmpfs, then prints to the
# console (console=ttyS0 on the kernel command line puts it on the serial
# port):
#
#   LANDSCAPER-CMDLINE: <the kernel command line>
#
# and, for every landscaper.check=<path> on the command line:
#
#   LANDSCAPER-FILE: <the file's contents>      (one line per line of the file)
#   LANDSCAPER-MODE: <its mode, octal, as stat -c %a prints it>
#
# and, for every landscaper.sum=<path> (for big files):
#
#   LANDSCAPER-SHA256: <the file's sha256> <path>
#
# or LANDSCAPER-MISSING: <path> when there is no such file. Then it prints
# LANDSCAPER-DONE and powers off (poweroff -f), so QEMU with -no-reboot
# exits.
#
# Usage: scripts/netboot-assets.sh OUTDIR
#
# Idempotent: when OUTDIR already holds what the same kernel, busybox and
# this script make, it changes nothing and returns at once. The kernel is
# the newest /boot/vmlinuz-*-cloud-amd64 unless NETBOOT_KERNEL names one.
# Needs (Debian): linux-image-cloud-amd64, busybox-static, cpio, gzip; all
# in scripts/install-deps.sh.
set -euo pipefail
export LC_ALL=C

die() { printf 'netboot-assets: error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install $2 (scripts/install-deps.sh installs it)"; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
out=$1

need cpio cpio
need gzip gzip
need sha256sum coreutils

kernel=${NETBOOT_KERNEL:-}
if [ -z "$kernel" ]; then
	kernel=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$kernel" ] || die "no /boot/vmlinuz-*-cloud-amd64: apt-get install linux-image-cloud-amd64 (scripts/install-deps.sh installs it)"
fi
[ -f "$kernel" ] && [ -r "$kernel" ] || die "kernel $kernel is not a readable file"

busybox=""
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ]; then busybox=$b; break; fi
done
[ -n "$busybox" ] || die "no /bin/busybox: apt-get install busybox-static (scripts/install-deps.sh installs it)"
# The initrd has no libraries: busybox must be the static one.
if command -v file >/dev/null 2>&1; then
	case "$(file -L "$busybox")" in
	*"dynamically linked"*) die "$busybox is dynamically linked: apt-get install busybox-static (not busybox)" ;;
	esac
fi
applets=$("$busybox" --list 2>/dev/null) || die "$busybox does not run"
for applet in sh mount cat stat poweroff mkdir sed tail sha256sum cut; do
	grep -qx "$applet" <<<"$applets" || die "$busybox has no $applet applet"
done

# The initrd's /init. Runs with busybox's applets installed as symlinks.
read -r -d '' init <<'EOF' || true
#!/bin/sh
# Written by Landscaper's scripts/netboot-assets.sh: prints what the network
# boot tests check, then powers off.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t devtmpfs devtmpfs /dev
# The initrd has no /dev/console of its own; now there is one.
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
# Kernel messages on the console would cut into the lines printed below.
echo 1 >/proc/sys/kernel/printk
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox --install -s /bin
echo "LANDSCAPER-CMDLINE: $(cat /proc/cmdline)"
for word in $(cat /proc/cmdline); do
	case "$word" in
	landscaper.check=*)
		path=${word#landscaper.check=}
		if [ -f "$path" ]; then
			sed 's/^/LANDSCAPER-FILE: /' "$path"
			# A last line without a newline still ends its output line.
			[ -z "$(tail -c 1 "$path")" ] || echo
			echo "LANDSCAPER-MODE: $(stat -c %a "$path")"
		else
			echo "LANDSCAPER-MISSING: $path"
		fi
		;;
	landscaper.sum=*)
		path=${word#landscaper.sum=}
		if [ -f "$path" ]; then
			echo "LANDSCAPER-SHA256: $(sha256sum "$path" | cut -d' ' -f1) $path"
		else
			echo "LANDSCAPER-MISSING: $path"
		fi
		;;
	esac
done
echo "LANDSCAPER-DONE"
poweroff -f
# Not reached; if poweroff fails, a kernel panic (init exits) with panic=-1
# reboots, which QEMU's -no-reboot turns into an exit.
EOF

# What the outputs are made of: a change to any of these rebuilds them.
stamp=$(
	{
		printf 'netboot-assets v1\n'
		printf 'kernel %s\n' "$kernel"
		sha256sum <"$kernel"
		sha256sum <"$busybox"
		printf '%s\n' "$init" | sha256sum
	} | sha256sum | cut -d' ' -f1
)

mkdir -p "$out"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/initrd.gz" ]; then
	printf 'netboot-assets: %s is up to date (kernel %s)\n' "$out" "$kernel"
	exit 0
fi

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/etc"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
printf '%s\n' "$init" >"$root/init"
chmod 0755 "$root/init"
# Fixed timestamps: the same inputs give the same bytes.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | sort | cpio --quiet -o -H newc --owner=0:0 --reproducible) |
	gzip -n -9 >"$work/initrd.gz"
cp "$kernel" "$work/vmlinuz"
chmod 0644 "$work/vmlinuz" "$work/initrd.gz"
mv -f "$work/vmlinuz" "$out/vmlinuz"
mv -f "$work/initrd.gz" "$out/initrd.gz"
printf '%s\n' "$stamp" >"$work/stamp"
mv -f "$work/stamp" "$out/stamp"
printf 'netboot-assets: wrote %s/vmlinuz (from %s) and %s/initrd.gz (%s bytes)\n' \
	"$out" "$kernel" "$out" "$(stat -c %s "$out/initrd.gz")"
