#!/usr/bin/env bash
# Makes the root file system of the test targets where systemd is PID 1
# (internal/systemdhost, booted with `systemd-nspawn --boot` by
# providers/nixos/systemdtest), from Debian's packages, without nixpkgs:
#
#   OUTDIR/rootfs/   a copy of scripts/vm-assets.sh's debootstrapped
#                    Debian 12 minbase root (openssh-server, nix-bin, ...)
#                    plus systemd, systemd-sysv (systemd as /sbin/init),
#                    dbus (systemctl reload and systemd-run talk to the
#                    manager; logind wants the bus) and sudo (a deploy
#                    user with passwordless sudo)
#
# and the little configuration a target needs (below): single-user nix for
# root, sshd reading authorized keys from /etc/ssh/authorized_keys.d/%u,
# no host keys (each container gets its own), an empty machine-id, the
# user "deploy", and the timers and gettys that have no business in a test
# masked. The containers never write it: each boots an overlay of it.
#
# Usage: scripts/systemd-rootfs.sh OUTDIR     (as root)
#
# Idempotent and cached: runs scripts/vm-assets.sh on VM_CACHE (default
# /var/cache/landscaper-vm; cached there, about 2 minutes when cold), then
# makes OUTDIR/rootfs once (about 15 s: a copy and an apt-get install in a
# chroot) and reuses it while this script and that root are unchanged.
# Several runs on the same OUTDIR wait for each other (flock OUTDIR/.lock).
#
# Environment: LANDSCAPER_VM_CACHE (vm-assets.sh's OUTDIR).
set -euo pipefail
export LC_ALL=C
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

say() { printf 'systemd-rootfs: %s\n' "$*"; }
die() { printf 'systemd-rootfs: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
[ "$(id -u)" -eq 0 ] || die "run this as root: it chroots"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm_cache=${LANDSCAPER_VM_CACHE:-/var/cache/landscaper-vm}
out=$(realpath -m "$1")
mkdir -p "$out"
exec 9>"$out/.lock"
if ! flock -n 9; then
	say "waiting for another run on $out"
	flock 9
fi

bash "$here/vm-assets.sh" "$vm_cache" | sed 's/^/systemd-rootfs: /'
base=$vm_cache/rootfs
[ -f "$base/.landscaper-stamp" ] || die "$base has no stamp: scripts/vm-assets.sh did not make it"

packages=(systemd systemd-sysv dbus sudo)
script_sum=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)
stamp=$(printf '%s\n' "systemd rootfs v1" "$script_sum" "$(cat "$base/.landscaper-stamp")" "${packages[*]}" | sha256sum | cut -c1-16)
rootfs=$out/rootfs
if [ -f "$rootfs/.landscaper-stamp" ] && [ "$(cat "$rootfs/.landscaper-stamp")" = "$stamp" ]; then
	say "reusing $rootfs (made $(date -u -r "$rootfs/.landscaper-stamp" '+%Y-%m-%d %H:%M UTC'))"
	exit 0
fi

started=$(date +%s)
tmp=$out/rootfs.tmp
rm -rf "$tmp"
say "copying $base"
cp -a "$base" "$tmp"
rm -f "$tmp/.landscaper-stamp"
say "apt-get install ${packages[*]} (in the chroot)"
if ! { chroot "$tmp" apt-get update -q &&
	DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -q --no-install-recommends "${packages[@]}"; } >"$out/apt.log" 2>&1; then
	tail -n 30 "$out/apt.log" >&2
	die "apt-get in the chroot failed (whole log: $out/apt.log)"
fi
chroot "$tmp" apt-get clean

# Nix for root alone, no daemon, no build users, no sandbox: the deployer
# copies in over ssh-ng, which runs nix-daemon --stdio as root.
mkdir -p "$tmp/etc/nix" "$tmp/nix"
cat >"$tmp/etc/nix/nix.conf" <<'EOF'
build-users-group =
sandbox = false
EOF
# sshd: keys for every user from /etc/ssh/authorized_keys.d (each container
# writes its own), no passwords, a log that names each login.
rm -f "$tmp"/etc/ssh/ssh_host_*
mkdir -p "$tmp/etc/ssh/authorized_keys.d" "$tmp/etc/ssh/sshd_config.d"
cat >"$tmp/etc/ssh/sshd_config.d/landscaper-test.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/authorized_keys.d/%u
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
EOF
# A login user whose commands go through sudo -n.
chroot "$tmp" useradd --create-home --shell /bin/sh deploy
chroot "$tmp" usermod -p '*' deploy
printf 'deploy ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$tmp/etc/sudoers.d/deploy"
chmod 0440 "$tmp/etc/sudoers.d/deploy"
# Each container boots with a machine ID of its own (nspawn's UUID).
: >"$tmp/etc/machine-id"
# Nothing a test target needs, and time at boot or later.
# systemd-remount-fs.service: nspawn makes the container's mounts, and
# the fstab is empty; with several containers booting at once it failed
# now and then, and a failed unit is what the provider's pre-flight
# refuses.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
	systemd-tmpfiles-clean.timer console-getty.service getty@.service systemd-remount-fs.service; do
	ln -sfn /dev/null "$tmp/etc/systemd/system/$unit"
done
rm -f "$tmp/usr/sbin/policy-rc.d"

printf '%s\n' "$stamp" >"$tmp/.landscaper-stamp"
rm -rf "$rootfs"
mv "$tmp" "$rootfs"
say "made $rootfs ($(du -sh "$rootfs" | cut -f1)) in $(($(date +%s) - started)) s"
