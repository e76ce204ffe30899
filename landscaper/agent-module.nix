# NixOS module for `landscaper agent`, pull mode's agent on a managed host
# (services.landscaper-agent): a long-running service that long-polls the
# pull server (`landscaper serve --pull-dir`), fetches the host's desired
# generation, activates it and reports back (docs/pull.md).
#
# The flake's nixosModules.agent imports this file and sets
# services.landscaper-agent.package to the flake's package; without the
# flake, set services.landscaper-agent.package yourself.
#
# Like nixos-module.nix it keeps to a small part of lib (mkOption,
# mkEnableOption, mkIf, literalExpression, types.{bool,str,path,package,
# nullOr,listOf,either}) and builtins, so that landscaper/packagingtest can
# evaluate it with a stub lib, without nixpkgs.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.landscaper-agent;
  inherit (lib) mkOption types;

  # As in nixos-module.nix (and nixpkgs' utils.escapeSystemdExecArgs): each
  # argument a JSON string, with systemd's specifiers (%) and variables ($)
  # escaped.
  escapeExecArgs = args:
    builtins.concatStringsSep " " (map
      (a: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON (toString a)))
      args);

  orEmpty = v: if v == null then "" else toString v;
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  absolute = p: hasPrefix "/" p;
  inStore = p: hasPrefix "/nix/store/" p;

  # --server-key takes the key itself or a file holding it. A Nix path
  # goes to the store, which is fine for a public key.
  serverKeyArg =
    if cfg.serverKey == null then ""
    else if builtins.isPath cfg.serverKey then "${cfg.serverKey}"
    else cfg.serverKey;
  serverKeyOk = cfg.serverKey == null || builtins.isPath cfg.serverKey
    || hasPrefix "ssh-" serverKeyArg || absolute serverKeyArg;

  # A Go duration, as --interval parses it ("5m", "90s", "1h30m").
  isDuration = s: builtins.match "([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+" s != null;

  # systemd makes and owns the state directory when it is under /var/lib
  # and a plain name (StateDirectory= takes a space-separated list, with
  # specifiers); elsewhere the agent makes it itself (mode 0700).
  stateDirectoryName =
    let
      m = builtins.match "/var/lib/([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)/?" cfg.stateDir;
      dotted = builtins.match "(.*/)?\\.\\.?(/.*)?" (builtins.head m) != null;
    in
    if m == null || dotted then null else builtins.head m;

  # `landscaper agent`'s flags, spelled as in landscaper/cli/agent.go; the
  # --flag=value form keeps every value one argument.
  agentArgs =
    [
      "${cfg.package}/bin/landscaper"
      "agent"
      "--server=${orEmpty cfg.server}"
      "--server-key=${serverKeyArg}"
      "--host-key=${cfg.hostKey}"
      "--state-dir=${cfg.stateDir}"
      "--interval=${cfg.interval}"
    ]
    ++ (if cfg.role == null then [ ] else [ "--role=${cfg.role}" ])
    ++ (if cfg.enrollTokenFile == null then [ ] else [ "--enroll-token-file=${cfg.enrollTokenFile}" ])
    ++ cfg.extraArgs;
in
{
  options.services.landscaper-agent = {
    enable = lib.mkEnableOption "the Landscaper pull agent (`landscaper agent`), which fetches this host's system from a pull server (`landscaper serve --pull-dir`), activates it under a dead-man switch and reports back";

    package = mkOption {
      type = types.package;
      description = ''
        The Landscaper package, whose `bin/landscaper` runs the agent (the
        flake's `packages.<system>.landscaper`). The flake's
        `nixosModules.agent` sets this; import this file directly and you
        must set it.
      '';
    };

    server = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "http://landscaper.example:8069";
      description = ''
        The pull server's base URL (`--server`): where `landscaper serve
        --pull-dir` listens with its HTTP listener (`--http-listen`), as
        this host reaches it. Required.
      '';
    };

    serverKey = mkOption {
      type = types.nullOr (types.either types.str types.path);
      default = null;
      example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...";
      description = ''
        The pull server's public key (`--server-key`): the contents of
        `PULL-DIR/server.pub` on the landscaper host (the server makes it
        on its first start), or the path of a copy of that file (an
        absolute path, or a Nix path, which goes to the store: it is a
        public key). The agent refuses every answer not signed by this
        key. Required.
      '';
    };

    hostKey = mkOption {
      # A string, not types.path: a path literal would copy the private
      # key into the world-readable store.
      type = types.str;
      default = "/etc/ssh/ssh_host_ed25519_key";
      description = ''
        This host's ed25519 SSH host key, the private half (`--host-key`):
        it signs every request (it is the host's identity, the
        `hostPublicKey` of its `nixos.pull` member) and opens the secrets
        sealed to it. The default is the key sshd makes on NixOS. An
        absolute path outside the Nix store.
      '';
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/landscaper-agent";
      description = ''
        The agent's state directory (`--state-dir`): the last generation
        it acted on and how that ended, a report waiting to be sent, and
        the trigger socket `trigger.sock`, to which `landscaper agent
        --trigger --state-dir DIR` connects to start a cycle at once
        ("update now"). Made with mode 0700 (by systemd's StateDirectory=
        when it is under /var/lib). An absolute path.
      '';
    };

    interval = mkOption {
      type = types.str;
      default = "5m";
      example = "1h";
      description = ''
        The longest wait between two cycles (`--interval`, a Go duration
        such as `90s`, `5m` or `1h`). Each wait is a long-poll of the
        server, which answers as soon as a new generation is published,
        so this is not how quickly a host learns of a new generation, but
        how often it looks again when nothing changed (and brings itself
        back when it no longer runs its generation).
      '';
    };

    role = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "web";
      description = ''
        Enrolls this machine in a role of `nixos.pull-role` (`--role`): with
        `enrollTokenFile`, the machine enrolls its host key in the role and
        from then on gets the role's current generation, without a
        `nixos.pull` member of its own. `null` (the default) for a host
        with its own `nixos.pull` member. Passed only when set.
      '';
    };

    enrollTokenFile = mkOption {
      # A string, not types.path: a path literal would copy the token
      # into the world-readable store.
      type = types.nullOr types.str;
      default = null;
      example = "/run/keys/landscaper-enroll-token";
      description = ''
        A file holding the role's enrollment token
        (`--enroll-token-file`), for enrolling this machine in `role` of
        `nixos.pull-role`. An absolute path outside the Nix store, as a
        string; the file is read by the agent (as root) and never copied.
        Set both `role` and this, or neither. Passed only when set.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "More arguments for `landscaper agent`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.server != null;
        message = "services.landscaper-agent.server is not set: set it to the pull server's base URL (http://HOST:8069), where `landscaper serve --pull-dir` listens.";
      }
      {
        assertion = cfg.server == null || hasPrefix "http://" cfg.server || hasPrefix "https://" cfg.server;
        message = "services.landscaper-agent.server (${orEmpty cfg.server}) must start with http:// or https://.";
      }
      {
        assertion = cfg.serverKey != null;
        message = "services.landscaper-agent.serverKey is not set: set it to the pull server's public key, the contents of PULL-DIR/server.pub on the landscaper host (or the path of a copy of it).";
      }
      {
        assertion = serverKeyOk;
        message = "services.landscaper-agent.serverKey (${serverKeyArg}) is neither a key (ssh-ed25519 AAAA...) nor an absolute path.";
      }
      {
        assertion = absolute cfg.hostKey && !inStore cfg.hostKey;
        message = "services.landscaper-agent.hostKey (${cfg.hostKey}) must be an absolute path outside the Nix store: it is the host's private key.";
      }
      {
        assertion = absolute cfg.stateDir;
        message = "services.landscaper-agent.stateDir (${cfg.stateDir}) must be an absolute path.";
      }
      {
        assertion = isDuration cfg.interval;
        message = "services.landscaper-agent.interval (${cfg.interval}) is not a Go duration such as 90s, 5m or 1h.";
      }
      {
        assertion = cfg.role == null || cfg.enrollTokenFile != null;
        message = "services.landscaper-agent.role is set (${orEmpty cfg.role}) but services.landscaper-agent.enrollTokenFile is not: enrolling in a role of nixos.pull-role takes the role's enrollment token.";
      }
      {
        assertion = cfg.enrollTokenFile == null || cfg.role != null;
        message = "services.landscaper-agent.enrollTokenFile is set but services.landscaper-agent.role is not: the token enrolls the machine in a role of nixos.pull-role; set role too.";
      }
      {
        assertion = cfg.role != "";
        message = "services.landscaper-agent.role is empty: name the role of nixos.pull-role, or leave it null.";
      }
      {
        assertion = cfg.enrollTokenFile == null || absolute cfg.enrollTokenFile && !inStore cfg.enrollTokenFile;
        message = "services.landscaper-agent.enrollTokenFile (${orEmpty cfg.enrollTokenFile}) must be an absolute path outside the Nix store: the token is a secret.";
      }
    ];

    # `landscaper agent --trigger` ("update now") on the host's PATH.
    environment.systemPackages = [ cfg.package ];

    systemd.services.landscaper-agent = {
      description = "Landscaper pull agent";
      documentation = [ "https://github.com/landscaper-nix/landscaper#pull-mode" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      # The host key must exist: sshd makes it when it first starts (in
      # sshd.service, or sshd-keygen.service in newer NixOS). Until then
      # the agent exits and is restarted (below).
      after = [ "network-online.target" "sshd-keygen.service" "sshd.service" ];

      # What the agent and its scripts run: nix-store (fetching the
      # closure) and nix-env (the system profile); flock (util-linux), by
      # which the activation supervisor takes the activation lock;
      # systemd-run and coreutils come with every NixOS service's PATH.
      # The supervisor, a transient unit, gets this PATH too. The health
      # checks of nixos.pull run with it, and see what they would see over
      # SSH as with nixos.system: the wrappers (sudo) and the running
      # system's packages.
      path = [ config.nix.package pkgs.util-linux "/run/wrappers" "/run/current-system/sw" ];

      # The activation of a new generation (switch-to-configuration, in
      # the supervisor's transient unit) must not restart or stop the
      # agent that is waiting to confirm it: restarted, the agent loses
      # the cycle, and the supervisor rolls the generation back. A new
      # package or new options for the agent take effect at the next boot
      # or `systemctl restart landscaper-agent` between cycles; a
      # generation without the agent leaves it running until then.
      restartIfChanged = false;
      unitConfig = {
        X-StopOnRemoval = false;
        # Never give up restarting: a host key sshd has not made yet, a
        # full disk, a crash.
        StartLimitIntervalSec = 0;
      };

      serviceConfig = {
        ExecStart = escapeExecArgs agentArgs;
        # Long-running (no timer): the agent long-polls the server. It
        # does not notify systemd; exec reports a binary that cannot run.
        Type = "exec";
        Restart = "always";
        RestartSec = "10s";
        # Root: the agent writes the secrets where the deployment says,
        # makes the system profile's generation and installs the boot
        # loader. A stop ends what runs in this unit (a fetch, a health
        # check, the boot step); an activation in flight belongs to the
        # supervisor (a transient unit of its own), which rolls it back
        # unless the agent confirmed it.
        User = "root";

        # The hardening keeps to settings under which everything this
        # unit runs still works. The activation itself is not part of it:
        # the agent starts the supervisor through systemd-run, as a
        # transient unit of its own (providers/nixos/remotescripts.go,
        # startScript), so `switch-to-configuration test` runs outside
        # this sandbox. But these run in this unit, as the agent's
        # children:
        #  - `nix-env -p /nix/var/nix/profiles/system --set` and the new
        #    system's `switch-to-configuration boot`, which installs the
        #    boot loader: writes to /boot (or the ESP wherever it is
        #    mounted), EFI variables in /sys/firmware/efi/efivars
        #    (bootctl, efibootmgr), the disk's boot sector (grub-install
        #    on BIOS), /nix/var/nix/profiles and /run/nixos;
        #  - after a failed boot step, the previous system's
        #    `switch-to-configuration boot` and `test`: a whole activation
        #    (it writes /etc, /var, users' homes, mounts and remounts,
        #    sets the host name, makes setuid wrappers on older NixOS);
        #  - the health checks, any command of the deployment's, which
        #    must see the host as nixos.system's checks do over SSH;
        #  - nix-store --realise, root's own store access (db and store
        #    written by the process, as in a root shell);
        # and writes the secrets at any absolute path the deployment
        # names outside /nix. Hence no setting that gives the unit a
        # mount namespace (ProtectSystem, ProtectHome, PrivateTmp,
        # PrivateDevices, ProtectKernelTunables, ProtectKernelModules,
        # ProtectKernelLogs, ProtectControlGroups, ProtectProc,
        # ReadWritePaths...): writes, new mounts and the boot loader's
        # devices would be confined to the namespace or refused. Running
        # those steps in a transient unit too would let this unit have
        # them.
        NoNewPrivileges = true;
        LockPersonality = true;
        RestrictRealtime = true;
        SystemCallArchitectures = "native";
        # AF_NETLINK: `ip`, `ss` and udevadm in health checks and
        # activation scripts.
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        # Deny only groups nothing above uses; EPERM rather than a kill,
        # for programs that probe.
        SystemCallFilter = [ "~@cpu-emulation" "~@debug" "~@obsolete" "~@raw-io" "~@reboot" "~@swap" ];
        SystemCallErrorNumber = "EPERM";
        # Relaxed on purpose:
        # - no MemoryDenyWriteExecute (Go is fine with it): health checks
        #   and activation scripts may run JIT compilers (node, Java,
        #   LuaJIT, PCRE2's JIT), which need writable executable memory;
        # - no RestrictSUIDSGID: the previous system's activation makes
        #   setuid wrappers (NixOS before suid-sgid-wrappers.service) and
        #   setgid directories;
        # - no RestrictNamespaces: health checks may enter containers or
        #   network namespaces (nixos-container run, ip netns exec);
        # - no ProtectClock and no DeviceAllow: they close the device
        #   cgroup, and grub-install writes the disk's boot sector;
        # - no ProtectHostname: the activation sets the host name;
        # - no CapabilityBoundingSet: the activation and the boot loader
        #   installation need root's capabilities;
        # - no UMask: activation scripts make files and directories that
        #   services of other users read (umask 0022); the agent writes
        #   its own files and the secrets with explicit modes;
        # - no RuntimeDirectory for /run/landscaper: the supervisor (and
        #   nixos.system's) keeps its lock and status there, and must
        #   outlive a stop of this unit.
      }
      // (if stateDirectoryName == null then { } else {
        StateDirectory = stateDirectoryName;
        StateDirectoryMode = "0700";
      });
    };
  };
}
