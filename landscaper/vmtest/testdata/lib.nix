# What the stand-ins of this directory share: the parts that
# scripts/vm-assets.sh made (OUTDIR/parts), imported into the store, and
# mkTools, which turns some of its Debian programs into a store path that
# runs anywhere (each program's libraries copied next to it and patchelf'd,
# as nixpkgs does). Built without nixpkgs, with the build host's /bin/sh,
# coreutils, patchelf, cpio and gzip: it needs nix without the sandbox, as
# scripts/install-deps.sh configures.
{ parts }:
let
  partsPath = if builtins.isPath parts then parts else /. + parts;

  # The programs and libraries, content-addressed: a new Debian package
  # changes the hash and rebuilds what uses it.
  userland = builtins.path { path = partsPath + "/userland"; name = "vm-userland-debian"; };

  # The kernel versions, the default (newest) first.
  kernelVersions = builtins.filter (v: builtins.isString v && v != "")
    (builtins.split "\n" (builtins.readFile (partsPath + "/kernels/list")));

  kernelParts = version: builtins.path {
    path = partsPath + "/kernels/${version}";
    name = "linux-${version}-parts";
  };

  # mkTools { name; programs; links; } copies the programs (names in
  # userland/bin) and the libraries they need into $out/bin and $out/lib,
  # points their interpreter and RUNPATH at $out/lib, adds the links
  # (name = target in bin), sh -> dash when dash is a program, and busybox's
  # applets for what the programs do not provide; and syslinux's MBR
  # (share/syslinux/mbr.bin), mke2fs.conf and ssh's moduli.
  mkTools = { name, programs, links ? { } }: derivation {
    inherit name userland;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/local/bin:/usr/bin:/bin";
    programs = builtins.concatStringsSep " " programs;
    links = builtins.concatStringsSep " " (builtins.attrValues (builtins.mapAttrs (n: t: "${n}=${t}") links));
    args = [ "-c" ''
      set -eu
      command -v patchelf >/dev/null || { echo "patchelf not found: apt-get install patchelf (scripts/install-deps.sh)" >&2; exit 1; }
      mkdir -p $out/bin $out/lib $out/share/syslinux $out/etc/ssh
      needed=""
      for p in $programs; do
        cp $userland/bin/$p $out/bin/$p
        chmod 0755 $out/bin/$p
        needed="$needed $(patchelf --print-needed $out/bin/$p 2>/dev/null || true)"
      done
      # The libraries, by walking DT_NEEDED.
      while [ -n "$(echo $needed)" ]; do
        next=""
        for l in $needed; do
          [ -e $out/lib/$l ] && continue
          [ -e $userland/lib/$l ] || { echo "library $l is not in $userland/lib" >&2; exit 1; }
          cp $userland/lib/$l $out/lib/$l
          chmod 0755 $out/lib/$l
          next="$next $(patchelf --print-needed $out/lib/$l 2>/dev/null || true)"
        done
        needed=$next
      done
      # C++ and thread cancellation dlopen libgcc_s.
      if [ -e $out/lib/libstdc++.so.6 ] || [ -e $out/lib/libc.so.6 ]; then
        [ -e $out/lib/libgcc_s.so.1 ] || { cp $userland/lib/libgcc_s.so.1 $out/lib/; chmod 0755 $out/lib/libgcc_s.so.1; }
      fi
      for f in $out/bin/*; do
        if patchelf --print-interpreter $f >/dev/null 2>&1; then
          patchelf --set-interpreter $out/lib/ld-linux-x86-64.so.2 --set-rpath $out/lib $f
        fi
      done
      for f in $out/lib/*; do
        case "''${f##*/}" in ld-linux-*|libc.so.*) continue ;; esac
        patchelf --set-rpath $out/lib $f
      done
      # nix dlopens libnss_dns (a stub since glibc 2.34) and warns without it.
      if [ -e $out/bin/nix ]; then
        cp $userland/lib/libnss_dns.so.2 $out/lib/
      fi
      # dash is sh: busybox's sh would run its own applets (umount, mount)
      # before the real programs.
      if [ -e $out/bin/dash ]; then ln -s dash $out/bin/sh; fi
      for l in $links; do
        ln -s "''${l#*=}" "$out/bin/''${l%%=*}"
      done
      if [ -e $out/bin/busybox ]; then
        for a in $($out/bin/busybox --list); do
          [ -e $out/bin/$a ] || [ -L $out/bin/$a ] || ln -s busybox $out/bin/$a
        done
      fi
      cp $userland/share/syslinux/mbr.bin $out/share/syslinux/mbr.bin
      cp $userland/etc/mke2fs.conf $out/etc/mke2fs.conf
      cp $userland/etc/ssh/moduli $out/etc/ssh/moduli
    '' ];
  };
in
{
  inherit userland kernelVersions kernelParts mkTools;
  defaultKernel = builtins.head kernelVersions;
}
