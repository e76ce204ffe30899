# The installation flow of a new server in one `landscaper apply`, written
# with the machines module Landscaper ships (landscaper.modules.machines).
# For the machine `server` it declares the members server.installerHostKey
# and server.deployKey (the installer's temporary host key and the
# deployer's login key), server.netboot (the boot entry), server.hostKey
# (waits for the booted installer, checks it presents the temporary key
# and that the boot server gave that key to one client only, and replaces
# it), server.install (with a disk script: the system installed onto the
# disks, and a reboot into it) and server.system (keeps that system up to
# date, pinned to the new key), and the rollout `machines`.
#
# What differs from site to site (addresses, MAC, boot directory, installer,
# system) is in params.nix; params.local.nix, when it exists, overrides it.
# More machines are more attributes of `machines`. See README.md.
{ landscaper, ... }:
let
  p = import ./params.nix
    // (if builtins.pathExists ./params.local.nix then import ./params.local.nix else { });
in
{
  imports = [ landscaper.modules.machines ];

  bootServer.bootDir = p.bootDir;

  machines.server = {
    inherit (p) mac address port diskoScript healthChecks reboot;
    installer = { inherit (p) kernel initrd cmdline hostKeyPath authorizedKeysPath; };
    system = p.toplevel;
  };
}
