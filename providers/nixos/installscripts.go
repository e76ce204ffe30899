package nixos

// The scripts nixos.install runs on the installer, as root. Each takes its
// arguments as $1, $2, ...

// preflightScript refuses a machine that is not running an installer: it
// must carry the marker $1, and its root file system must not be on a
// disk. $2 must not be mounted yet (an installation that failed half way
// is started again from a fresh boot of the installer).
const preflightScript = `set -u
marker="$1"
mnt="$2"
rootfs=$(awk '$2 == "/" { t = $3 } END { print t }' /proc/mounts)
rootdev=$(awk '$2 == "/" { d = $1 } END { print d }' /proc/mounts)
if [ ! -e "$marker" ]; then
	echo "this machine is not running an installer: $marker is missing (its root file system is $rootfs on $rootdev); a machine that booted from its disk is never wiped" >&2
	exit 1
fi
case "$rootfs" in
tmpfs|ramfs|rootfs|overlay|squashfs|iso9660) ;;
*)
	case "$rootdev" in
	/dev/*)
		echo "this machine's root file system is $rootfs on $rootdev, a disk, although $marker is present: it booted from a disk, and is never wiped" >&2
		exit 1 ;;
	esac ;;
esac
if awk -v m="$mnt" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; then
	echo "$mnt is mounted already (an earlier installation that did not finish?): boot the installer again to start afresh" >&2
	exit 1
fi
for tool in nix-store nix-env chroot mount umount; do
	command -v "$tool" >/dev/null 2>&1 || { echo "the installer has no $tool" >&2; exit 1; }
done
`

// diskScript runs the disk script $1 and checks that it mounted $2.
const diskScript = `set -eu
disko="$1"
mnt="$2"
"$disko" >&2
if ! awk -v m="$mnt" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; then
	echo "the disk script finished but nothing is mounted at $mnt" >&2
	exit 1
fi
`

// profileScript makes $1 the first generation of the system profile in
// the store at $2, as nixos-install does.
const profileScript = `set -eu
toplevel="$1"
mnt="$2"
mkdir -p -m 0755 "$mnt/nix/var/nix/profiles" "$mnt/etc" "$mnt/tmp"
chmod 1777 "$mnt/tmp"
touch "$mnt/etc/NIXOS"
nix-env --store "$mnt" -p "$mnt/nix/var/nix/profiles/system" --set "$toplevel"
`

// hostKeyCopyScript copies the host key at $1 (the one presented now,
// whose public half must be $3) to the same path under $2, mode 0600; the
// private key never leaves the machine.
const hostKeyCopyScript = `set -eu
key="$1"
mnt="$2"
want="$3"
if [ ! -f "$key" ]; then
	echo "no host key at $key" >&2
	exit 1
fi
have=$(ssh-keygen -y -f "$key" | awk '{ print $1 " " $2 }')
if [ "$have" != "$want" ]; then
	echo "the host key at $key is not the one the machine presents (hostKeyPath must be where sshd reads it)" >&2
	exit 1
fi
umask 077
mkdir -p "$mnt$(dirname "$key")"
cp "$key" "$mnt$key.landscaper-new"
chmod 0600 "$mnt$key.landscaper-new"
mv -f "$mnt$key.landscaper-new" "$mnt$key"
printf '%s\n' "$want" >"$mnt$key.pub"
chmod 0644 "$mnt$key.pub"
`

// writeFileScript writes stdin to $1 with mode $2, creating directories.
const writeFileScript = `set -eu
f="$1"
mode="$2"
umask 077
mkdir -p "$(dirname "$f")"
rm -f "$f.landscaper-new"
cat >"$f.landscaper-new"
chmod "$mode" "$f.landscaper-new"
mv -f "$f.landscaper-new" "$f"
`

// bootloaderScript installs the boot loader of the system $1 on the disks
// mounted at $2, with the system's own switch-to-configuration in a chroot
// of $2, /dev, /proc and /sys bound and /run a fresh tmpfs, as
// nixos-install and nixos-enter do.
const bootloaderScript = `set -eu
toplevel="$1"
mnt="$2"
for d in dev proc sys run; do mkdir -p "$mnt/$d"; done
mount --rbind /dev "$mnt/dev"
mount --rbind /proc "$mnt/proc"
mount --rbind /sys "$mnt/sys"
mount -t tmpfs -o mode=0755 tmpfs "$mnt/run"
status=0
if [ -x "$mnt$toplevel/activate" ] || [ -x "$toplevel/activate" ]; then
	# As nixos-enter does: the activation script makes /etc and the rest
	# that the boot loader's installation may look for; its failures are
	# not fatal there either.
	chroot "$mnt" "$toplevel/activate" >&2 || true
fi
NIXOS_INSTALL_BOOTLOADER=1 chroot "$mnt" "$toplevel/bin/switch-to-configuration" boot >&2 || status=$?
umount -R "$mnt/run" "$mnt/sys" "$mnt/proc" "$mnt/dev" 2>/dev/null || umount -lR "$mnt/run" "$mnt/sys" "$mnt/proc" "$mnt/dev" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
	echo "switch-to-configuration boot exited with status $status" >&2
	exit "$status"
fi
`

// unmountScript flushes and unmounts everything under $1.
const unmountScript = `set -eu
mnt="$1"
sync
umount -R "$mnt"
`

// installedProbeScript says whether the machine runs the installer (the
// marker $1) and what it booted.
const installedProbeScript = `marker="$1"
if [ -e "$marker" ]; then echo installer=1; else echo installer=0; fi
if [ -e /run/booted-system ]; then echo "booted=$(readlink -f /run/booted-system 2>/dev/null)"; else echo booted=; fi
exit 0
`
