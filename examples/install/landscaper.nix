# The installation flow of a new server in one `landscaper apply`: generate
# the installer's temporary host key and the deployer's login key, write the
# server's network boot entry, wait for the booted installer's SSH and check
# it presents the temporary key, and that the boot server gave that key to
# one client only, replace that key on the server, then copy and activate
# the server's NixOS system, pinned to the new key.
#
# What differs from site to site (addresses, MAC, boot directory, installer,
# system) is in params.nix; params.local.nix, when it exists, overrides it.
# See README.md.
{ members, providers, ... }:
let
  p = import ./params.nix
    // (if builtins.pathExists ./params.local.nix then import ./params.local.nix else { });

  # How the deployer reaches the server, for both nixos members.
  ssh = {
    inherit (p) address port;
    privateKey = members.deployKey.outputs.privateKey;
  };
in
{
  # The installer's temporary host key. Its private half travels to the
  # server in the boot entry; its public half is what the deployer expects
  # the installer to present.
  members.installerHostKey = {
    type = providers.ssh-keypair.keypair;
    inputs.comment = "installer";
  };

  # The deployer's login key: root's authorized key on the installer.
  members.deployKey = {
    type = providers.ssh-keypair.keypair;
    inputs.comment = "landscaper";
  };

  # The server's network boot entry, served by `landscaper serve`: the
  # installer's kernel, initrds and command line, and an extra initrd for
  # this MAC only with the temporary host key and root's authorized_keys.
  members.netboot = {
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
  # the temporary host key, then replaces that key by one generated on the
  # server; hostPublicKey is the new key. Before it logs in, it reads the
  # boot server's record of who fetched the extra initrd (bootRecord) and
  # refuses the key if anyone but the client that fetched the server's
  # script first got or asked for it; after logging in it seals the
  # record, so the boot server hands the extra initrd to nobody any more.
  members.hostKey = {
    type = providers.nixos.host-key;
    inputs = ssh // {
      expectedHostKey = members.installerHostKey.outputs.publicKey;
      hostKeyPath = p.hostKeyPath;
      bootRecord = members.netboot.outputs.fetchRecord;
    };
  };

  # Copies the server's system and activates it (test, then boot default),
  # trusting only the new host key.
  members.system = {
    type = providers.nixos.system;
    inputs = ssh // {
      hostPublicKey = members.hostKey.outputs.hostPublicKey;
      toplevel = "${p.toplevel}";
    };
  };
}
