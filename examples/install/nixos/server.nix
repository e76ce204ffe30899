# The server that examples/install installs with nixos.install: its disks
# (a disko layout), boot loader, sshd and network. The recipe, with the
# reasons and sources, is docs/installer.md.
#
# One configuration gives both the system and its disk script, for
# params.nix or params.local.nix:
#
#   let server = import <nixpkgs/nixos> { configuration = ./nixos/server.nix; }; in {
#     toplevel = server.config.system.build.toplevel;
#     diskoScript = server.config.system.build.diskoScript;
#   }
#
# diskoScript is one executable that unmounts /mnt, wipes the disks below,
# partitions, formats and mounts them under /mnt, asking nothing;
# nixos.install runs it on the installer.
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [
    # Firmware that the hardware may need (redistributable blobs).
    (modulesPath + "/installer/scan/not-detected.nix")

    # disko's NixOS module: the disko.devices option, fileSystems made from
    # it, and system.build.diskoScript. Pin it at a site (a commit and its
    # sha256: disko's docs/HowTo.md). With flakes, delete this line and put
    # disko.nixosModules.disko into the configuration's modules instead.
    "${builtins.fetchTarball "https://github.com/nix-community/disko/archive/master.tar.gz"}/module.nix"
  ];

  # GPT: an EFI system partition and an ext4 root filling the rest. The
  # device name is used only by the disk script; the installed system
  # mounts the partitions by their labels (/dev/disk/by-partlabel/
  # disk-main-ESP and disk-main-root). A /dev/disk/by-id/... name is safer
  # where the machine has more than one disk.
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/sda";
    content = {
      type = "gpt";
      partitions = {
        ESP = {
          type = "EF00";
          size = "512M";
          content = {
            type = "filesystem";
            format = "vfat";
            mountpoint = "/boot";
            mountOptions = [ "umask=0077" ];
          };
        };
        root = {
          size = "100%";
          content = {
            type = "filesystem";
            format = "ext4";
            mountpoint = "/";
          };
        };
      };
    };
  };

  # UEFI: systemd-boot on the ESP. With canTouchEfiVariables = false,
  # bootctl leaves the firmware's boot order alone (--no-variables) and the
  # firmware finds systemd-boot at the ESP's fallback path
  # EFI/BOOT/BOOTX64.EFI once the boot server sends the machine on to its
  # disk; with true, bootctl would put its own entry first and the machine
  # would stop booting from the network, where a reinstallation starts.
  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = false;
  # BIOS instead: a first partition `boot = { size = "1M"; type = "EF02"; };`
  # (disko's example/gpt-bios-compat.nix; disko then sets
  # boot.loader.grub.devices to this disk), no ESP, and in place of the two
  # lines above: boot.loader.grub.enable = true;

  # What the initrd needs to see the disk: take the list from
  # `nixos-generate-config --show-hardware-config` run on the installer.
  boot.initrd.availableKernelModules = [ "ahci" "nvme" "xhci_pci" "usb_storage" "sd_mod" ];

  services.openssh = {
    enable = true;
    # nixos.install (keepHostKey) writes the key the installer presents to
    # this path, so the deployer pins the same key before and after the
    # reboot. sshd generates a key only where the file is missing or empty.
    hostKeys = [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ];
    settings = {
      PermitRootLogin = "prohibit-password";
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
    };
    # Root's key is /root/.ssh/authorized_keys, written by nixos.install's
    # extraFiles in examples/install/landscaper.nix. NixOS's AuthorizedKeysFile
    # includes %h/.ssh/authorized_keys while authorizedKeysInHomedir is
    # true, its default; a profile that turns it off shuts the deployer out
    # (then give the key in users.users.root.openssh.authorizedKeys.keys).
  };

  # The server must answer at params.nix's address and port after the
  # reboot, as the installer did: by DHCP with a reservation for its MAC
  # (NixOS's default is DHCP on every interface), or a static address:
  #   networking.useDHCP = false;
  #   networking.interfaces.eno1.ipv4.addresses = [ { address = "192.0.2.20"; prefixLength = 24; } ];
  #   networking.defaultGateway = "192.0.2.1";
  #   networking.nameservers = [ "192.0.2.1" ];
  networking.hostName = "server";

  # The release the server was first installed with; never change it later.
  system.stateVersion = "25.11";
}
