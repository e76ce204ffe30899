# The installer that examples/install boots over the network: a NixOS
# netboot image (a kernel and one initrd that holds the whole system in a
# squashfs) whose sshd uses the per-machine files of the boot entry's extra
# initrd, and which carries the marker nixos.install looks for. The recipe,
# with the reasons and sources, is docs/installer.md.
#
# Its boot files, for params.nix or params.local.nix:
#
#   let
#     installer = import <nixpkgs/nixos> { configuration = ./nixos/installer.nix; };
#     build = installer.config.system.build;
#   in {
#     kernel = "${build.kernel}/${installer.config.system.boot.loader.kernelFile}"; # bzImage on x86_64
#     initrd = [ "${build.netbootRamdisk}/initrd" ];
#     cmdline = "init=${build.toplevel}/init ${toString installer.config.boot.kernelParams}";
#   }
#
# That is the command line of netboot.nix's netbootIpxeScript without its
# initrd=initrd: the landscaper boot server adds initrd=<name> for each
# initrd it loads. Landscaper builds the three before it writes the entry.
{ config, lib, pkgs, modulesPath, ... }:
let
  # Where the boot entry's extra initrd puts the two files (params.nix's
  # hostKeyPath and authorizedKeysPath). These are paths in the initramfs,
  # that is, in stage 1 of the boot.
  hostKey = "/etc/ssh/ssh_host_ed25519_key";
  authorizedKeys = "/etc/ssh/authorized_keys.d/root";

  # Where stage 2's sshd reads root's key. Not /etc/ssh/authorized_keys.d:
  # NixOS writes /etc/ssh/authorized_keys.d/<user> itself (environment.etc)
  # for every user with openssh.authorizedKeys, and its activation would
  # replace the deployer's key as soon as some module gave root a key.
  keysDir = "/etc/landscaper/authorized_keys.d";

  # Stage 1 copies both files into the new root (root: where stage 1 has
  # mounted it), keeping their modes. The kernel unpacks every initrd, the
  # extra one too, into the initramfs; the netboot image's root is a tmpfs
  # mounted in stage 1, and switching to it deletes the initramfs with all
  # in it. Without the copy, stage 2 has neither file and sshd makes a new
  # key, which nixos.host-key refuses.
  copyFiles = root: ''
    if [ -f ${hostKey} ]; then
      mkdir -p "${root}/etc/ssh"
      (umask 077 && cp ${hostKey} "${root}${hostKey}")
      chmod 0600 "${root}${hostKey}"
    fi
    if [ -f ${authorizedKeys} ]; then
      mkdir -p "${root}${keysDir}"
      cp ${authorizedKeys} "${root}${keysDir}/root"
      chmod 0444 "${root}${keysDir}/root"
    fi
  '';
in
{
  # kernel, netbootRamdisk, a tmpfs root, the store as a squashfs under a
  # tmpfs overlay; through netboot-base.nix also installation-device.nix
  # (sshd on, root's console login without a password).
  imports = [ (modulesPath + "/installer/netboot/netboot-minimal.nix") ];

  # Scripted stage 1 (stage-1-init.sh): postMountCommands runs once the
  # new root is mounted at $targetRoot (/mnt-root), before the switch.
  boot.initrd.postMountCommands =
    lib.mkIf (!config.boot.initrd.systemd.enable) (copyFiles "$targetRoot");

  # systemd stage 1 (boot.initrd.systemd.enable; nixpkgs' default from
  # 26.05 on) refuses postMountCommands; the new root is at /sysroot and
  # complete once initrd-fs.target is reached.
  boot.initrd.systemd.services.landscaper-installer-files =
    lib.mkIf config.boot.initrd.systemd.enable {
      description = "Copy the files of Landscaper's extra initrd into the new root";
      after = [ "initrd-fs.target" ];
      before = [ "initrd.target" ];
      wantedBy = [ "initrd.target" ];
      serviceConfig.Type = "oneshot";
      script = copyFiles "/sysroot";
    };

  services.openssh = {
    enable = true;
    # Only the carried key: sshd's key generation runs ssh-keygen only for
    # a key file that is missing or empty, so it keeps this one, and the
    # installer presents no other key.
    hostKeys = [ { path = hostKey; type = "ed25519"; } ];
    # Added to NixOS's defaults (%h/.ssh/authorized_keys and
    # /etc/ssh/authorized_keys.d/%u), not in place of them.
    authorizedKeysFiles = [ "${keysDir}/%u" ];
    settings = {
      # installation-device.nix allows "yes" (mkDefault); keys only here.
      PermitRootLogin = "prohibit-password";
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
    };
  };

  # nixos.host-key replaces the temporary key by one made on the machine and
  # then reloads sshd: `systemctl reload sshd.service`, or, as NixOS's
  # sshd.service has no ExecReload, SIGHUP to the service's main process
  # (systemctl kill), which makes sshd re-execute itself and read its host
  # keys again. ExecReload makes the plain reload work too.
  # (services.openssh.startWhenNeeded = true also does: a socket-activated
  # sshd reads the key at every connection, and host-key accepts an active
  # sshd.socket.)
  systemd.services.sshd.serviceConfig.ExecReload =
    lib.mkIf (!config.services.openssh.startWhenNeeded)
      (lib.mkDefault "${pkgs.coreutils}/bin/kill -HUP $MAINPID");

  # nixos.install wipes the disks only of a machine that has this file (and
  # whose root file system is not on a disk: here it is a tmpfs). Never put
  # it into the installed system.
  environment.etc."landscaper-installer".text = ''
    This machine runs Landscaper's network installer
    (examples/install/nixos/installer.nix). nixos.install may erase its disks.
  '';

  # DHCP on every interface (NixOS's default). The installer must come up at
  # params.nix's address: give the MAC a reservation in the site's DHCP.
  networking.hostName = "landscaper-installer";

  # A serial console: boot.kernelParams = [ "console=tty0" "console=ttyS0,115200" ];

  # Nothing else to install: every NixOS system has what nixos.install and
  # nixos.host-key run here (nix-store, nix-env and nix-daemon for
  # `nix copy --to ssh-ng://...`, chroot, mount, umount, setsid, awk,
  # ssh-keygen, systemctl). The experimental feature nix-command is needed
  # only by the deployer's `nix copy`, which enables it for itself.

  # Rebuilt, never upgraded in place.
  system.stateVersion = config.system.nixos.release;
}
