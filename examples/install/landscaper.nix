# The installation flow of a new server in one `landscaper apply`: generate
# the installer's temporary host key and the deployer's login key, write the
# server's network boot entry, wait for the booted installer's SSH and check
# it presents the temporary key, and that the boot server gave that key to
# one client only, replace that key on the server, install the server's
# NixOS system onto its disks and reboot it into that system (with a disk
# script), then keep that system up to date, pinned to the new key.
#
# What differs from site to site (addresses, MAC, boot directory, installer,
# system) is in params.nix; params.local.nix, when it exists, overrides it.
# See README.md.
{ members, providers, ... }:
let
  p = import ./params.nix
    // (if builtins.pathExists ./params.local.nix then import ./params.local.nix else { });

  # With a disk script, the server is installed onto its disks and boots
  # from them; without one, its system runs on the installer (the
  # simulated server of `make demo` has no disks).
  installing = p.diskoScript != null;

  # How the deployer reaches the server, for the nixos members.
  ssh = {
    inherit (p) address port;
    privateKey = members.deployKey.outputs.privateKey;
  };
in
{
  members = {
    # The installer's temporary host key. Its private half travels to the
    # server in the boot entry; its public half is what the deployer
    # expects the installer to present. Replacing it starts a new
    # installer session: `landscaper apply --replace installerHostKey`
    # installs the server again.
    installerHostKey = {
      type = providers.ssh-keypair.keypair;
      inputs.comment = "installer";
    };

    # The deployer's login key: root's authorized key on the installer
    # and, through the installation's extra files, on the installed system.
    deployKey = {
      type = providers.ssh-keypair.keypair;
      inputs.comment = "landscaper";
    };

    # The server's network boot entry, served by `landscaper serve`: the
    # installer's kernel, initrds and command line, and an extra initrd for
    # this MAC only with the temporary host key and root's authorized_keys.
    # Once the server is installed, its installation record (written by
    # `install`) makes the boot server send it to its disk instead.
    netboot = {
      type = providers.pxe-nbp.entry;
      inputs = {
        inherit (p) mac kernel initrd cmdline bootDir;
        files = {
          ${p.hostKeyPath} = { contents = members.installerHostKey.outputs.privateKey; mode = "0600"; };
          ${p.authorizedKeysPath} = { contents = "${members.deployKey.outputs.publicKey}\n"; mode = "0444"; };
        };
      };
    };

    # Waits (up to 10 minutes) until the booted installer answers SSH with
    # the temporary host key, then replaces that key by one generated on
    # the server; hostPublicKey is the new key. Before it logs in, it reads
    # the boot server's record of who fetched the extra initrd (bootRecord)
    # and refuses the key if anyone but the client that fetched the
    # server's script first got or asked for it; after logging in it seals
    # the record, so the boot server hands the extra initrd to nobody any
    # more. When it is replaced (a new temporary key), it removes the
    # installation record and reboots the server into its installer.
    hostKey = {
      type = providers.nixos.host-key;
      inputs = ssh // {
        expectedHostKey = members.installerHostKey.outputs.publicKey;
        hostKeyPath = p.hostKeyPath;
        bootRecord = members.netboot.outputs.fetchRecord;
        bootInstalledRecord = if installing then members.netboot.outputs.installedRecord else "";
      };
    };

    # Copies the server's system and activates it (test, health checks,
    # then boot default), trusting only the new host key. After an
    # installation the server runs this system already, so the first apply
    # has nothing to do here; later applies update the server.
    system = {
      type = providers.nixos.system;
      inputs = ssh // {
        hostPublicKey =
          if installing then members.install.outputs.hostPublicKey
          else members.hostKey.outputs.hostPublicKey;
        toplevel = "${p.toplevel}";
        inherit (p) healthChecks reboot;
      };
    };
  } // (if !installing then { } else {
    # Installs the server onto its disks from the installer: runs the disk
    # script (partitions, formats and mounts under /mnt), copies the
    # system, installs its boot loader, carries the host key over, writes
    # root's authorized key for the deployer, records the installation for
    # the boot server (the server's network boot now leads to its disk),
    # reboots it and checks that it booted the system from its disk, still
    # presenting the same host key.
    install = {
      type = providers.nixos.install;
      inputs = ssh // {
        hostPublicKey = members.hostKey.outputs.hostPublicKey;
        toplevel = "${p.toplevel}";
        diskoScript = "${p.diskoScript}";
        hostKeyPath = p.hostKeyPath;
        bootInstalledRecord = members.netboot.outputs.installedRecord;
        extraFiles."/root/.ssh/authorized_keys" = {
          contents = "${members.deployKey.outputs.publicKey}\n";
          mode = "0600";
        };
      };
    };
  });
}
