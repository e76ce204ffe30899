# A stand-in for a disko script (disko's config.system.build.diskoScript,
# what `disko --mode destroy,format,mount` runs): a store path that is an
# executable, which partitions a disk, formats it and mounts it at /mnt for
# an installation,
# with its own tools (sfdisk, wipefs, mke2fs, mount; from Debian, patchelf'd
# into the store by lib.nix), so it runs on any installer it is copied to.
#
#   $out           destroy, format, mount: an MBR label with one bootable
#                  Linux partition from 1 MiB to the end, ext4 labelled
#                  rootLabel, mounted at /mnt, with /mnt/boot
#   $out mount     only mounts what an earlier run made
#
# It refuses to touch a machine that is not running Landscaper's installer:
# without the marker /etc/landscaper-installer it exits 3 before it writes
# anything.
{ parts, disk ? "/dev/vda", rootLabel ? "nixos" }:
let
  lib = import ./lib.nix { inherit parts; };
  tools = lib.mkTools {
    name = "disko-standin-tools";
    programs = [ "dash" "busybox" "sfdisk" "wipefs" "blkid" "mke2fs" "mount" "umount" ];
    links = { "mkfs.ext4" = "mke2fs"; };
  };
  script = ''
    #!@tools@/bin/sh
    # disko stand-in (landscaper/vmtest/testdata/disko-standin.nix).
    set -eu
    export PATH=@tools@/bin
    export MKE2FS_CONFIG=@tools@/etc/mke2fs.conf
    disk=@disk@
    label=@rootLabel@
    mode=''${1:-destroy,format,mount}
    if [ ! -e /etc/landscaper-installer ]; then
      echo "disko: /etc/landscaper-installer does not exist: this machine is not running the landscaper installer; refusing to touch $disk" >&2
      exit 3
    fi
    [ -b "$disk" ] || { echo "disko: $disk is not a block device" >&2; exit 1; }
    case "$disk" in
    *[0-9]) part=''${disk}p1 ;;
    *) part=''${disk}1 ;;
    esac
    case "$mode" in
    destroy,format,mount)
      if grep -q " /mnt" /proc/mounts; then umount -R /mnt; fi
      echo "disko: wiping $disk"
      wipefs --all --quiet "$disk"
      printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk --quiet --wipe always --wipe-partitions always "$disk"
      i=0
      while [ ! -b "$part" ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "disko: $part did not appear" >&2; exit 1; }
        sleep 0.1
      done
      echo "disko: formatting $part (ext4, label $label)"
      mkfs.ext4 -q -F -L "$label" "$part"
      ;;
    mount) ;;
    *) echo "usage: $0 [destroy,format,mount|mount]" >&2; exit 1 ;;
    esac
    mkdir -p /mnt
    mount -t ext4 "$part" /mnt
    mkdir -p /mnt/boot
    echo "disko: $part mounted at /mnt"
  '';
in
derivation {
  name = "disko-standin";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  inherit tools script disk rootLabel;
  args = [ "-c" ''
    printf '%s' "$script" | sed -e "s|@tools@|$tools|g" -e "s|@disk@|$disk|g" -e "s|@rootLabel@|$rootLabel|g" >$out
    chmod 0555 $out
  '' ];
}
