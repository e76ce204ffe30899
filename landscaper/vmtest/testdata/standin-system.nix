# A stand-in NixOS system that boots a real (QEMU) machine from its disk,
# built without nixpkgs from the parts scripts/vm-assets.sh makes. Its
# toplevel has what Landscaper's nixos provider and a NixOS installer look
# at in a real system:
#
#   kernel          -> the kernel (a store path of its own per version)
#   initrd          -> stage 1: loads the virtio and ext4 modules, finds the
#                      root file system by label (root=LABEL=<rootLabel>),
#                      mounts it and switches to init= (this system's init)
#   kernel-modules  -> the modules of stage 2 (the NICs) and their order
#   init            stage 2, PID 1 on the installed disk: mounts, points
#                   /run/booted-system and /run/current-system at the
#                   toplevel, activates, makes a host key if there is none,
#                   configures the network by DHCP and becomes busybox
#                   init, which keeps sshd running
#   activate        writes /etc (users, sshd_config, root's authorized keys),
#                   /bin/sh, /usr/bin/env, and points /run/current-system at
#                   the toplevel; runs in an installer's chroot too
#   bin/switch-to-configuration  test | switch | boot | dry-activate
#   sw              the programs (dash as sh, busybox, sshd, ssh-keygen, nix,
#                   setsid, flock, extlinux, ...), patchelf'd into the store
#   kernel-params, nixos-version, init-interface-version, system,
#   landscaper-standin (the marker)
#
# The boot loader is extlinux (syslinux) on the ext4 root file system:
# `switch-to-configuration boot` (and switch) copies the kernels and initrds
# of this system and of every generation of /nix/var/nix/profiles/system
# into /boot/nixos and writes /boot/extlinux/extlinux.conf with this system
# as the default; with NIXOS_INSTALL_BOOTLOADER=1 it also installs extlinux
# into /boot/extlinux and syslinux's MBR onto the disk that holds /boot
# (and marks its partition active), as NixOS's installer asks of a boot
# loader. Each call is logged to /nix/var/standin/log, as the stand-ins of
# internal/testhost do.
#
# sshd reads /etc/ssh/ssh_host_ed25519_key (made at boot when missing; an
# installer writes it into /mnt/etc/ssh before the first boot) and root's
# keys from /etc/ssh/authorized_keys.d/root (authorizedKeys, written by
# activate) or ~/.ssh/authorized_keys.
{ parts                # scripts/vm-assets.sh's OUTDIR/parts (path or string)
, name ? "standin"     # part of the store name: nixos-system-<name>
, kernelVersion ? null # one of parts/kernels/list; null: the newest
, kernelName ? null    # the kernel's store name (another name, another kernel path)
, extraCmdline ? ""    # added to the kernel command line
, rootLabel ? "nixos"  # the label of the root file system
, authorizedKeys ? [ ] # root's keys ("ssh-ed25519 AAAA... comment")
, marker ? name        # the contents of $out/landscaper-standin
, withNix ? true       # nix in sw, so the system can be deployed to
, console ? "ttyS0,115200"
}:
let
  lib = import ./lib.nix { inherit parts; };
  version = if kernelVersion == null then lib.defaultKernel else kernelVersion;
  kparts = lib.kernelParts version;

  sw = lib.mkTools {
    name = "standin-sw";
    programs = [ "dash" "busybox" "sshd" "ssh-keygen" "sftp-server" "setsid" "flock" "mount" "umount"
      "blkid" "e2fsck" "sfdisk" "extlinux" ] ++ (if withNix then [ "nix" ] else [ ]);
    links = if withNix then {
      nix-build = "nix"; nix-daemon = "nix"; nix-env = "nix"; nix-store = "nix";
      nix-instantiate = "nix"; nix-collect-garbage = "nix"; nix-copy-closure = "nix";
    } else { };
  };

  kernel = derivation {
    name = if kernelName == null then "linux-${version}" else kernelName;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    inherit kparts;
    args = [ "-c" "mkdir -p $out && cp $kparts/bzImage $out/bzImage" ];
  };

  modules = derivation {
    name = "linux-${version}-modules";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    inherit kparts;
    args = [ "-c" "mkdir -p $out && cp -r $kparts/lib $out/lib && cp $kparts/modules-stage2 $out/modules-load" ];
  };

  stage1 = ''
    #!/bin/sh
    # Stage 1 of a landscaper stand-in system (landscaper/vmtest).
    export PATH=/bin
    mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    fail() {
      echo "landscaper-standin stage 1: error: $*"
      echo "landscaper-standin stage 1: starting a shell on the console"
      exec sh
    }
    kver=$(uname -r)
    echo "landscaper-standin stage 1: kernel $kver"
    while read -r m; do insmod "/lib/modules/$kver/$m" 2>/dev/null || true; done </etc/modules-stage1
    init=
    root=LABEL=@rootLabel@
    for w in $(cat /proc/cmdline); do
      case "$w" in
      init=*) init=''${w#init=} ;;
      root=*) root=''${w#root=} ;;
      esac
    done
    [ -n "$init" ] || fail "no init= on the kernel command line"
    dev=
    i=0
    while :; do
      case "$root" in
      LABEL=*|UUID=*) dev=$(findfs "$root" 2>/dev/null) || dev= ;;
      *) [ -b "$root" ] && dev=$root ;;
      esac
      [ -n "$dev" ] && break
      i=$((i + 1))
      [ $i -lt 300 ] || fail "no device $root after 30 seconds"
      sleep 0.1
    done
    mkdir -p /mnt-root
    mount -t ext4 -o rw "$dev" /mnt-root || fail "cannot mount $dev"
    [ -x "/mnt-root$init" ] || fail "$dev has no $init"
    echo "landscaper-standin stage 1: root $root is $dev; starting $init"
    umount /sys /proc
    mount --move /dev /mnt-root/dev
    exec switch_root /mnt-root "$init"
  '';

  initrd = derivation {
    name = "initrd-linux-${version}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    inherit kparts rootLabel stage1;
    busybox = "${lib.userland}/bin/busybox";
    args = [ "-c" ''
      set -eu
      root=$TMPDIR/root
      mkdir -p $root/bin $root/dev $root/proc $root/sys $root/etc $root/lib/modules
      cp $busybox $root/bin/busybox
      for a in $($root/bin/busybox --list); do [ -e $root/bin/$a ] || ln -s busybox $root/bin/$a; done
      cp -r $kparts/lib/modules/* $root/lib/modules/
      cp $kparts/modules-stage1 $root/etc/modules-stage1
      printf '%s' "$stage1" | sed -e "s|@rootLabel@|$rootLabel|g" >$root/init
      chmod 0755 $root/init
      find $root -exec touch -h -d @1 {} +
      mkdir -p $out
      (cd $root && find . -mindepth 1 | sort | cpio --quiet -o -H newc --owner=0:0 --reproducible) | gzip -9 -n >$out/initrd
    '' ];
  };

  kernelParams = "root=LABEL=${rootLabel} console=${console} panic=10"
    + (if extraCmdline == "" then "" else " ${extraCmdline}");

  stage2 = ''
    #!@sw@/bin/sh
    # Stage 2 of a landscaper stand-in system: PID 1 on the installed disk.
    systemConfig=@out@
    export PATH=@sw@/bin
    [ -e /proc/self ] || mount -t proc proc /proc
    [ -e /sys/kernel ] || mount -t sysfs sysfs /sys
    [ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    echo "landscaper-standin: stage 2 of $systemConfig"
    mount -o remount,rw /
    mkdir -p /dev/pts /dev/shm /run
    mount -t devpts -o gid=5,mode=620 devpts /dev/pts
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    mkdir -p /run/sshd /tmp /var/log /var/empty /root
    chmod 1777 /tmp
    ln -sfn "$systemConfig" /run/booted-system
    "$systemConfig/activate"
    # As NixOS's sshd does when it starts: a host key when there is none
    # (an installer writes one into /mnt/etc/ssh before the first boot).
    if [ ! -e /etc/ssh/ssh_host_ed25519_key ]; then
      ssh-keygen -q -t ed25519 -N "" -C @name@ -f /etc/ssh/ssh_host_ed25519_key
      echo "landscaper-standin: made a host key: $(ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key)"
    fi
    kver=$(uname -r)
    while read -r m; do
      insmod "/run/booted-system/kernel-modules/lib/modules/$kver/$m" 2>/dev/null || true
    done </run/booted-system/kernel-modules/modules-load
    ip link set lo up
    for dev in /sys/class/net/*; do
      ifc=''${dev##*/}
      [ "$ifc" = lo ] && continue
      ip link set "$ifc" up
      udhcpc -i "$ifc" -b -t 10 -T 2 -S -s "$systemConfig/etc/udhcpc.script" -x hostname:@name@
    done
    echo "landscaper-standin: $(cat "$systemConfig/nixos-version") ready; sshd starts on port 22"
    exec @sw@/bin/init
  '';

  activate = ''
    #!@sw@/bin/sh
    # Activation of a landscaper stand-in system: what NixOS's activation
    # script does that this system needs.
    set -e
    systemConfig=@out@
    export PATH=@sw@/bin
    mkdir -p /etc/ssh /etc/nix /root /run/sshd /bin /usr/bin /tmp /nix/var/nix/gcroots
    chmod 0755 /etc /etc/ssh
    chmod 0700 /root
    cat >/etc/passwd.tmp <<EOF
    root:x:0:0:root:/root:/run/current-system/sw/bin/sh
    sshd:x:100:65534:sshd privilege separation:/run/sshd:/run/current-system/sw/bin/false
    nobody:x:65534:65534:nobody:/var/empty:/run/current-system/sw/bin/false
    EOF
    mv /etc/passwd.tmp /etc/passwd
    printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group.tmp && mv /etc/group.tmp /etc/group
    [ -e /etc/shadow ] || { printf 'root:*:19000:0:99999:7:::\n' >/etc/shadow; chmod 0600 /etc/shadow; }
    echo @name@ >/etc/hostname
    # Not in an installer's chroot (no booted system there yet), where the
    # host name is the installer's.
    if [ -e /run/booted-system ]; then hostname @name@; fi
    printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/hosts
    for f in ssh/sshd_config inittab nix/nix.conf; do ln -sfn "$systemConfig/etc/$f" "/etc/$f"; done
    ln -sfn @sw@/etc/ssh/moduli /etc/ssh/moduli
    if [ -e "$systemConfig/etc/ssh/authorized_keys.d/root" ]; then
      # A copy, not a link: sshd refuses a key file below the group-writable /nix/store.
      mkdir -p /etc/ssh/authorized_keys.d
      cp "$systemConfig/etc/ssh/authorized_keys.d/root" /etc/ssh/authorized_keys.d/.root.tmp
      chmod 0444 /etc/ssh/authorized_keys.d/.root.tmp
      mv /etc/ssh/authorized_keys.d/.root.tmp /etc/ssh/authorized_keys.d/root
    fi
    [ ! -e /etc/ssh/ssh_host_ed25519_key ] || chmod 0600 /etc/ssh/ssh_host_ed25519_key
    ln -sfn @sw@/bin/sh /bin/sh
    ln -sfn @sw@/bin/env /usr/bin/env
    ln -sfn "$systemConfig" /run/current-system
  '';

  switchToConfiguration = ''
    #!@sw@/bin/sh
    # switch-to-configuration of a landscaper stand-in system. The boot
    # loader is extlinux on the root file system (see standin-system.nix).
    self=@out@
    export PATH=@sw@/bin
    action="$1"
    mkdir -p /nix/var/standin
    echo "$self $action" >>/nix/var/standin/log
    case "$action" in
    switch|boot|test|dry-activate) ;;
    *) echo "usage: switch-to-configuration [switch|boot|test|dry-activate]" >&2; exit 1 ;;
    esac
    if [ "$action" = dry-activate ]; then
      echo "would activate $self"
      exit 0
    fi

    # The disk (sys/block/<disk>) and partition number of the file system of $1.
    disk_of() {
      dev=$(stat -c %d "$1")
      major=$(( (dev >> 8) & 0xfff ))
      minor=$(( (dev & 0xff) | ((dev >> 12) & 0xfff00) ))
      sys=$(readlink -f "/sys/dev/block/$major:$minor") || return 1
      [ -f "$sys/partition" ] || { echo "$1 is not on a disk partition ($sys)" >&2; return 1; }
      partnum=$(cat "$sys/partition")
      disk=$(basename "$(dirname "$sys")")
    }

    # entry SYSTEM LABEL: copies SYSTEM's kernel and initrd into /boot/nixos
    # and prints its extlinux entry.
    entry() {
      k=$(readlink -f "$1/kernel")
      i=$(readlink -f "$1/initrd")
      kn=$(basename "$(dirname "$k")")-$(basename "$k")
      in=$(basename "$(dirname "$i")")-$(basename "$i")
      for f in "$k:$kn" "$i:$in"; do
        if [ ! -f "/boot/nixos/''${f#*:}" ]; then
          cp "''${f%%:*}" "/boot/nixos/.''${f#*:}.tmp"
          mv "/boot/nixos/.''${f#*:}.tmp" "/boot/nixos/''${f#*:}"
        fi
        echo "''${f#*:}" >>/boot/nixos/.used
      done
      printf 'LABEL %s\n  LINUX ../nixos/%s\n  INITRD ../nixos/%s\n  APPEND init=%s/init %s\n\n' \
        "$2" "$kn" "$in" "$1" "$(cat "$1/kernel-params")"
    }

    install_boot_loader() {
      set -e
      mkdir -p /boot/extlinux /boot/nixos
      : >/boot/nixos/.used
      {
        echo "# Written by $self/bin/switch-to-configuration boot."
        echo "DEFAULT nixos-default"
        echo "PROMPT 0"
        echo "TIMEOUT 10"
        echo
        entry "$self" nixos-default
        for g in $(ls -d /nix/var/nix/profiles/system-*-link 2>/dev/null | sed 's/.*system-\([0-9]*\)-link/\1/' | sort -rn); do
          entry "$(readlink -f "/nix/var/nix/profiles/system-$g-link")" "nixos-generation-$g"
        done
      } >/boot/extlinux/.extlinux.conf.tmp
      sync
      mv /boot/extlinux/.extlinux.conf.tmp /boot/extlinux/extlinux.conf
      for f in /boot/nixos/*; do
        grep -qxF "''${f##*/}" /boot/nixos/.used || rm -f "$f"
      done
      rm -f /boot/nixos/.used
      if [ "''${NIXOS_INSTALL_BOOTLOADER:-}" = 1 ]; then
        disk_of /boot
        echo "installing extlinux into /boot/extlinux and syslinux's MBR onto /dev/$disk (partition $partnum active)"
        extlinux --install /boot/extlinux
        dd if=@sw@/share/syslinux/mbr.bin of="/dev/$disk" bs=440 count=1 conv=notrunc 2>/dev/null
        sfdisk --quiet --no-reread --no-tell-kernel --activate "/dev/$disk" "$partnum"
      fi
      sync
    }

    if [ "$action" = test ] || [ "$action" = switch ]; then
      if [ -e /run/current-system/init-interface-version ] &&
        [ "$(cat /run/current-system/init-interface-version)" != "$(cat "$self/init-interface-version")" ]; then
        echo "The new system changes the init interface; it won't take effect until you reboot" >&2
        exit 100
      fi
      "$self/activate" || { echo "Activation script of $self failed" >&2; exit 2; }
      if ! kill -0 "$(cat /run/sshd.pid 2>/dev/null)" 2>/dev/null; then
        @sw@/bin/sshd -f /etc/ssh/sshd_config -E /run/sshd.log
      fi
    fi
    if [ "$action" = boot ] || [ "$action" = switch ]; then
      ( install_boot_loader ) || { echo "Failed to install bootloader" >&2; exit 1; }
    fi
    exit 0
  '';

  sshdConfig = ''
    # sshd of a landscaper stand-in system.
    Port 22
    HostKey /etc/ssh/ssh_host_ed25519_key
    AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u
    PermitRootLogin prohibit-password
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    UsePAM no
    PrintMotd no
    PidFile /run/sshd.pid
    Subsystem sftp @sw@/bin/sftp-server
    SetEnv PATH=/run/current-system/sw/bin
  '';

  inittab = ''
    ::respawn:@sw@/bin/sshd -D -e -f /etc/ssh/sshd_config
    ::askfirst:-@sw@/bin/sh
    ::ctrlaltdel:@sw@/bin/reboot
    ::shutdown:@sw@/bin/sync
    ::shutdown:@sw@/bin/umount -a -r
  '';

  udhcpcScript = ''
    #!@sw@/bin/sh
    export PATH=@sw@/bin
    case "$1" in
    deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/''${mask:-24}" dev "$interface"
      for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
      : >/etc/resolv.conf
      for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
      echo "landscaper-standin: $interface has address $ip/''${mask:-24}" >/dev/console
      ;;
    esac
    exit 0
  '';

  nixConf = ''
    build-users-group =
    sandbox = false
    experimental-features = nix-command
  '';
in
derivation {
  name = "nixos-system-${name}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  inherit sw kernel initrd modules kernelParams marker stage2 activate switchToConfiguration
    sshdConfig inittab udhcpcScript nixConf;
  hostName = name;
  nixosVersion = "landscaper-standin-${name} (Linux ${version})";
  authorizedKeys = builtins.concatStringsSep "\n" authorizedKeys;
  args = [ "-c" ''
    set -eu
    mkdir -p $out/bin $out/etc/ssh $out/etc/nix
    ln -s $kernel/bzImage $out/kernel
    ln -s $initrd/initrd $out/initrd
    ln -s $modules $out/kernel-modules
    ln -s $sw $out/sw
    printf '%s' "$kernelParams" >$out/kernel-params
    printf '%s\n' "$nixosVersion" >$out/nixos-version
    echo landscaper-standin-1 >$out/init-interface-version
    echo x86_64-linux >$out/system
    printf '%s\n' "$marker" >$out/landscaper-standin
    subst() { sed -e "s|@out@|$out|g" -e "s|@sw@|$sw|g" -e "s|@name@|$hostName|g"; }
    printf '%s' "$stage2" | subst >$out/init
    printf '%s' "$activate" | subst >$out/activate
    printf '%s' "$switchToConfiguration" | subst >$out/bin/switch-to-configuration
    printf '%s' "$udhcpcScript" | subst >$out/etc/udhcpc.script
    chmod 0755 $out/init $out/activate $out/bin/switch-to-configuration $out/etc/udhcpc.script
    printf '%s' "$sshdConfig" | subst >$out/etc/ssh/sshd_config
    printf '%s' "$inittab" | subst >$out/etc/inittab
    printf '%s' "$nixConf" >$out/etc/nix/nix.conf
    if [ -n "$authorizedKeys" ]; then
      mkdir -p $out/etc/ssh/authorized_keys.d
      printf '%s\n' "$authorizedKeys" >$out/etc/ssh/authorized_keys.d/root
    fi
  '' ];
}
