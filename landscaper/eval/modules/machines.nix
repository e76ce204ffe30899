# landscaper.modules.machines: bare-metal machines installed over the
# network, one attribute of `machines` each. For every machine it declares
# the installation flow of examples/install as a group of members named
# after the machine (<name>.installerHostKey, <name>.deployKey,
# <name>.netboot, <name>.hostKey, <name>.install with a disk script,
# <name>.system), and the rollout `machines` over their systems. Adding a
# machine adds its members; removing it removes them. docs/machines.md
# documents the options.
{ lib, config, options, members, providers, ... }:
let
  inherit (builtins) attrNames concatMap filter head isAttrs match replaceStrings toJSON;
  inherit (lib) mkOption types;

  macAddress = lib.mkOptionType {
    name = "macAddress";
    description = "MAC address (six pairs of hexadecimal digits separated by colons or hyphens, such as 52:54:00:12:34:56)";
    check = v: builtins.isString v && match "[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}" v != null;
    merge = lib.modules.mergeEqual;
  };

  # The options of one machine.
  machine = { name, ... }: {
    options = {
      mac = mkOption {
        type = macAddress;
        description = "The MAC address of the network card the machine boots from: its boot entry's key.";
      };
      address = mkOption {
        type = types.nonEmptyStr;
        description = "The address the machine answers SSH on, as an installer and once installed.";
      };
      port = mkOption {
        type = types.port;
        default = 22;
        description = "The machine's SSH port.";
      };
      installer = {
        kernel = mkOption {
          type = types.path;
          description = "The installer's kernel (an absolute path, usually in the Nix store).";
        };
        initrd = mkOption {
          type = types.listOf types.path;
          default = [ ];
          description = "The installer's initrds, in the order they are loaded.";
        };
        cmdline = mkOption {
          type = types.str;
          default = "";
          description = "The installer's kernel command line (a NixOS netboot image needs init=<toplevel>/init).";
        };
        hostKeyPath = mkOption {
          type = types.str;
          default = "/etc/ssh/ssh_host_ed25519_key";
          description = "Where the installer's sshd reads its host key: the boot entry puts the temporary key there.";
        };
        authorizedKeysPath = mkOption {
          type = types.str;
          default = "/etc/ssh/authorized_keys.d/root";
          description = "Where the installer's sshd reads root's authorized keys: the boot entry puts the login key there.";
        };
      };
      diskoScript = mkOption {
        type = types.nullOr types.package;
        default = null;
        description = ''
          The script that partitions, formats and mounts the machine's disks
          under /mnt (disko's config.system.build.diskoScript). With one, the
          system is installed onto the disks and the machine boots from them;
          with null, the system runs on the installer, in RAM.
        '';
      };
      system = mkOption {
        type = types.package;
        description = "The machine's NixOS system (config.system.build.toplevel).";
      };
      healthChecks = mkOption {
        type = types.listOf types.attrs;
        default = [ ];
        description = ''
          Checks of each new system after activation (nixos.system's
          healthChecks): { command = "..."; } or { url = "..."; }.
        '';
      };
      reboot = mkOption {
        type = types.enum [ "never" "ifNeeded" "always" ];
        default = "never";
        description = "Whether an update reboots the machine (nixos.system's reboot).";
      };
    };
  };

  # The members of machine `name` (m is its configuration).
  machineMembers = name: m:
    let
      own = members.${name}.members;
      installing = m.diskoScript != null;
      ssh = {
        inherit (m) address port;
        privateKey = own.deployKey.outputs.privateKey;
      };
    in
    {
      members = {
        # The installer's temporary host key: its private half travels in
        # the boot entry, its public half is what hostKey expects.
        # Replacing it starts a new installer session (installs again).
        installerHostKey = {
          type = providers.ssh-keypair.keypair;
          inputs.comment = "installer ${name}";
        };
        # The deployer's login key: root's authorized key on the installer
        # and on the installed system.
        deployKey = {
          type = providers.ssh-keypair.keypair;
          inputs.comment = "landscaper ${name}";
        };
        netboot = {
          type = providers.pxe-nbp.entry;
          inputs = {
            inherit (m) mac;
            inherit (m.installer) kernel initrd cmdline;
            inherit (config.bootServer) bootDir;
            files = {
              ${m.installer.hostKeyPath} = { contents = own.installerHostKey.outputs.privateKey; mode = "0600"; };
              ${m.installer.authorizedKeysPath} = { contents = "${own.deployKey.outputs.publicKey}\n"; mode = "0444"; };
            };
          };
        };
        hostKey = {
          type = providers.nixos.host-key;
          inputs = ssh // {
            expectedHostKey = own.installerHostKey.outputs.publicKey;
            inherit (m.installer) hostKeyPath;
            bootRecord = own.netboot.outputs.fetchRecord;
            bootInstalledRecord = if installing then own.netboot.outputs.installedRecord else "";
          };
        };
        system = {
          type = providers.nixos.system;
          inputs = ssh // {
            hostPublicKey = if installing then own.install.outputs.hostPublicKey else own.hostKey.outputs.hostPublicKey;
            toplevel = "${m.system}";
            inherit (m) healthChecks reboot;
          };
        };
      } // lib.optionalAttrs installing {
        install = {
          type = providers.nixos.install;
          inputs = ssh // {
            hostPublicKey = own.hostKey.outputs.hostPublicKey;
            toplevel = "${m.system}";
            diskoScript = "${m.diskoScript}";
            inherit (m.installer) hostKeyPath;
            bootInstalledRecord = own.netboot.outputs.installedRecord;
            extraFiles."/root/.ssh/authorized_keys" = {
              contents = "${own.deployKey.outputs.publicKey}\n";
              mode = "0600";
            };
          };
        };
      };
    };

  # The files that define machines.<name>.<attr> (or, when a definition is
  # not a plain set, machines.<name>), for messages.
  definitionsOf = name:
    (lib.modules.byName [ "machines" ] options.machines.definitionsWithLocations).${name} or [ ];
  filesOf = name: attr:
    let
      defs = definitionsOf name;
      sets = filter (d: isAttrs d.value && !(d.value ? _type)) defs;
      exact = (lib.modules.byName [ "machines" name ] sets).${attr} or [ ];
    in
    lib.modules.showFiles (if exact != [ ] then exact else defs);

  # Two machines that share a MAC (in any notation) or an address and port.
  macKey = m: replaceStrings [ "-" "A" "B" "C" "D" "E" "F" ] [ ":" "a" "b" "c" "d" "e" "f" ] m.mac;
  addressKey = m: "${m.address} port ${toString m.port}";
  clashes = what: attr: key:
    let
      names = attrNames config.machines;
      keyOf = n: key config.machines.${n};
      pairs = concatMap (a: map (b: { inherit a b; }) (filter (b: a < b && keyOf a == keyOf b) names)) names;
      option = n: "option `machines.${n}.${attr}` (in ${filesOf n attr})";
    in
    map (p: "${option p.a} and ${option p.b} give two machines the same ${what}, ${keyOf p.a}: each machine needs its own") pairs;

  # Machine names become member names, which may not hold '.' or '#'.
  badNames = map
    (n: "the machine name ${toJSON n} (option `machines`, defined in ${filesOf n "mac"}) is the name of its members' group: use letters, digits, '-' and '_'")
    (filter (n: match "[A-Za-z0-9_][A-Za-z0-9_-]*" n == null) (attrNames config.machines));

  problems = badNames ++ clashes "MAC" "mac" macKey ++ clashes "address and port" "address" addressKey;
in
{
  _file = "landscaper.modules.machines";

  options = {
    machines = mkOption {
      type = types.attrsOf (types.submodule { _file = "landscaper.modules.machines"; imports = [ machine ]; });
      default = { };
      description = ''
        Bare-metal machines to install over the network and keep up to date,
        by name. Each gets the members <name>.installerHostKey,
        <name>.deployKey, <name>.netboot, <name>.hostKey, <name>.install
        (with a diskoScript) and <name>.system; the rollout `machines`
        updates their systems.
      '';
    };
    bootServer.bootDir = mkOption {
      type = types.str;
      default = "/var/lib/landscaper/boot";
      description = "The directory `landscaper serve --boot-dir` serves, where the machines' boot entries are written.";
    };
  };

  config = {
    members =
      if problems != [ ] then throw "landscaper: ${head problems}"
      else lib.mapAttrs machineMembers config.machines;
    rollouts = lib.mkIf (config.machines != { }) {
      machines.members = map (n: "${n}.system") (attrNames config.machines);
    };
  };
}
