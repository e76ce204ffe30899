# The parameters of examples/install: what differs between a real site and
# Landscaper's test and demo. landscaper.nix imports this file and, when it
# exists, params.local.nix, whose attributes take precedence (the test and
# `make demo` write one with their loopback address, port, MAC and boot
# directory; a site may keep its own values there too).
#
# The installer and the system below are stand-ins built without nixpkgs,
# so that the example runs anywhere nix does. The comments show what a real
# site writes instead.
{
  # The new server: the address and SSH port its installer answers on once
  # booted, and the MAC address of the network card it boots from.
  address = "192.0.2.20";
  port = 22;
  mac = "52:54:00:12:34:56";

  # The directory `landscaper serve --boot-dir` serves.
  bootDir = "/var/lib/landscaper/boot";

  # The installer the server boots over the network. Its sshd must use the
  # host key at hostKeyPath and root's authorized_keys at
  # authorizedKeysPath, files that the boot entry's extra initrd carries.
  # A real installer is, for example, the NixOS netboot image of
  # nixos/installer.nix (which copies those two files from the extra
  # initrd into its root and carries nixos.install's marker; see
  # docs/installer.md), which `landscaper apply` builds before it writes
  # the boot entry:
  #
  #   let installer = import <nixpkgs/nixos> { configuration = ./nixos/installer.nix; };
  #       build = installer.config.system.build; in
  #   kernel = "${build.kernel}/bzImage";
  #   initrd = [ "${build.netbootRamdisk}/initrd" ];
  #   cmdline = "init=${build.toplevel}/init ${toString installer.config.boot.kernelParams}";
  #
  # The stand-ins are files that builtins.toFile writes into the store when
  # the deployment is evaluated; Landscaper's test and demo fetch them from
  # the boot server but boot no kernel.
  kernel = builtins.toFile "installer-kernel-standin" "a stand-in for the installer's kernel\n";
  initrd = [ (builtins.toFile "installer-initrd-standin" "a stand-in for the installer's initrd\n") ];
  cmdline = "console=ttyS0,115200";
  hostKeyPath = "/etc/ssh/ssh_host_ed25519_key";
  authorizedKeysPath = "/etc/ssh/authorized_keys.d/root";

  # The server's NixOS system (its toplevel). A real site writes
  #
  #   toplevel = (import <nixpkgs/nixos> { configuration = ./nixos/server.nix; }).config.system.build.toplevel;
  #
  # or, in a flake, self.nixosConfigurations.server.config.system.build.toplevel.
  # Landscaper builds it before applying the system member.
  #
  # The stand-in is a derivation whose bin/switch-to-configuration records
  # what the real one would change: `test` and `switch` point
  # /run/current-system at it, `boot` and `switch` write its path to
  # /nix/var/standin/boot-default, and each call is logged to
  # /nix/var/standin/log (where the stand-in hosts of Landscaper's tests
  # keep their boot default and log). It is built with the host's /bin/sh, so
  # it needs a nix without the build sandbox, as scripts/install-deps.sh
  # configures.
  toplevel = derivation {
    name = "nixos-system-server-standin";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" ''
      mkdir -p $out/bin
      cat > $out/bin/switch-to-configuration <<EOF
      #!/bin/sh
      # A stand-in for NixOS's switch-to-configuration.
      mkdir -p /nix/var/standin && echo "$out \$1" >> /nix/var/standin/log
      case "\$1" in
      test|switch) ln -sfn $out /run/current-system ;;
      boot) ;;
      *) echo "usage: switch-to-configuration switch|boot|test" >&2; exit 1 ;;
      esac
      case "\$1" in
      boot|switch) mkdir -p /nix/var/standin && echo $out > /nix/var/standin/boot-default ;;
      esac
      EOF
      chmod +x $out/bin/switch-to-configuration
    '' ];
  };

  # The disk script that partitions, formats and mounts the server's disks
  # under /mnt: with one, `install` (nixos.install) installs the system onto
  # the disks and the server boots from them; with null, the system runs on
  # the installer, in RAM (the simulated server of `make demo` has no
  # disks). A real site writes, with disko's NixOS module in the server's
  # configuration (see nixos/server.nix next to this file):
  #
  #   diskoScript = (import <nixpkgs/nixos> { configuration = ./nixos/server.nix; }).config.system.build.diskoScript;
  diskoScript = null;

  # Checks of each new system after activation (nixos.system's
  # healthChecks), such as [ { command = "systemctl is-active sshd"; } ]
  # or [ { url = "http://192.0.2.20/health"; } ]; a failing check rolls
  # the server back to the system it ran before.
  healthChecks = [ ];

  # Whether an update reboots the server: "never", "ifNeeded" (when the
  # new system's kernel, initrd or modules differ from the booted ones)
  # or "always".
  reboot = "never";
}
