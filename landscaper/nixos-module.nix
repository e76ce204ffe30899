# NixOS module for the Landscaper boot server (`landscaper serve`), which
# with pullDir is pull mode's server too. The managed hosts' agent has its
# own module, agent-module.nix.
#
# The flake's nixosModules.default imports this file and sets
# services.landscaper.package to the flake's package; without the flake, set
# services.landscaper.package yourself.
#
# The module keeps to a small part of lib (mkOption, mkEnableOption, mkIf,
# literalExpression, types.{bool,str,path,package,nullOr,listOf}) and
# builtins, so that landscaper/packagingtest can evaluate it with a stub lib,
# without nixpkgs. Using more of lib means extending that stub.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.landscaper;
  inherit (lib) mkOption types;

  # The port of a Go listen address (":69", "0.0.0.0:69", "[::]:8069"),
  # or null when it has none in digits (a service name such as ":tftp").
  portOf = addr:
    let m = builtins.match ".*:(0|[1-9][0-9]{0,4})" addr;
    in if m == null then null else builtins.fromJSON (builtins.head m);

  tftpPort = if cfg.tftpListen == null then null else portOf cfg.tftpListen;
  httpPort = if cfg.httpListen == null then null else portOf cfg.httpListen;

  # Like utils.escapeSystemdExecArgs: each argument a JSON string, with
  # systemd's specifiers (%) and variables ($) escaped.
  escapeExecArgs = args:
    builtins.concatStringsSep " " (map
      (a: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON (toString a)))
      args);

  orEmpty = v: if v == null then "" else toString v;

  # `landscaper serve`'s flags, spelled as in landscaper/cli/serve.go. The
  # --flag=value form keeps an empty value (a disabled listener, no iPXE
  # directory) one argument.
  serveArgs =
    [
      "${cfg.package}/bin/landscaper"
      "serve"
      "--boot-dir=${cfg.bootDir}"
      "--tftp-listen=${orEmpty cfg.tftpListen}"
      "--http-listen=${orEmpty cfg.httpListen}"
      # "${...}" and not toString: a path literal goes to the store.
      "--ipxe-dir=${if cfg.ipxeDir == null then "" else "${cfg.ipxeDir}"}"
    ]
    ++ (if cfg.httpUrl == null then [ ] else [ "--http-url=${cfg.httpUrl}" ])
    ++ (if cfg.pullDir == null then [ ] else [ "--pull-dir=${cfg.pullDir}" ])
    ++ cfg.extraArgs;

  # A path as one word of a unit setting or a tmpfiles.d line: quoted
  # (with C escapes, as JSON has them: a space stays in the path), with
  # systemd's specifiers escaped.
  quotePath = p: builtins.replaceStrings [ "%" ] [ "%%" ] (builtins.toJSON p);

  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  underHome = dir: builtins.any (p: dir == p || hasPrefix "${p}/" dir) [ "/home" "/root" "/run/user" ];
in
{
  options.services.landscaper = {
    enable = lib.mkEnableOption "the Landscaper boot server (`landscaper serve`), which serves the pxe-nbp provider's boot entries over TFTP and HTTP, and with pullDir pull mode's API";

    package = mkOption {
      type = types.package;
      description = ''
        The Landscaper package: the `landscaper` command and the
        `landscaper-provider-*` binaries in one `bin` directory (the
        flake's `packages.<system>.landscaper`). Landscaper looks for its
        providers next to its own binary first, then on `PATH`. The flake's
        NixOS module sets this; import this file directly and you must set
        it.
      '';
    };

    bootDir = mkOption {
      # A string, not types.path: a path literal would be copied into the
      # store, and the entries are written at run time.
      type = types.str;
      default = "/var/lib/landscaper/boot";
      description = ''
        The directory of boot entries (`--boot-dir`): the `bootDir` input
        of the deployment's `pxe-nbp.entry` members, which `landscaper
        apply` writes. The service reads the entries and writes only each
        version's fetch record (`versions/<mac>/<version>/fetch/`: which
        client may have the machine's `extra.cpio`); it never creates the
        directory, which the provider creates on its first entry. The
        directory must exist when the service starts, for the service to
        be allowed to write there: create it first, or restart the service
        after the first apply (until then, the server refuses every
        `extra.cpio` and logs why). It may not be under `/home`, `/root`
        or `/run/user`, which the service cannot see (ProtectHome). An
        absolute path.
      '';
    };

    tftpListen = mkOption {
      type = types.nullOr types.str;
      default = ":69";
      example = "192.0.2.10:69";
      description = ''
        The address TFTP listens on (`--tftp-listen`), in Go's
        `host:port` form; `null` turns TFTP off. Each transfer is sent
        from a new ephemeral UDP port, as TFTP does.
      '';
    };

    httpListen = mkOption {
      type = types.nullOr types.str;
      default = ":8069";
      example = "[::]:80";
      description = ''
        The address HTTP listens on (`--http-listen`), in Go's
        `host:port` form; `null` turns HTTP off. It also serves the
        Prometheus metrics at `/metrics`.
      '';
    };

    httpUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "http://192.0.2.10:8069";
      description = ''
        The base URL booting machines reach the HTTP listener at
        (`--http-url`). When set, the machine scripts load kernels and
        initrds over HTTP from there even when the script itself came over
        TFTP, which is much faster than TFTP. When `null`, the scripts use
        URLs relative to their own, so files come by the protocol the
        script came by. The DHCP server hands iPXE
        `<httpUrl>/boot.ipxe` (see docs/dhcp.md).
      '';
    };

    ipxeDir = mkOption {
      type = types.nullOr types.path;
      default = "${pkgs.ipxe}";
      defaultText = lib.literalExpression ''"''${pkgs.ipxe}"'';
      description = ''
        The directory of the iPXE binaries served as `undionly.kpxe`,
        `ipxe.efi` and `snponly.efi` (`--ipxe-dir`); `null` serves none.
        nixpkgs' `ipxe` holds the host architecture's `ipxe.efi`, and on
        x86 `undionly.kpxe`, but no `snponly.efi`; see docs/dhcp.md for a
        directory with it.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the TFTP port (UDP) and the HTTP port (TCP) of the listen
        addresses in the firewall. NixOS's firewall needs nothing more for
        TFTP's data ports: the server sends each transfer's first packet
        from its ephemeral port, so the client's answers are replies to a
        flow the host started, which connection tracking lets in (the
        conntrack TFTP helper is for TFTP clients behind a firewall, not
        for servers).
      '';
    };

    user = mkOption {
      type = types.str;
      default = "landscaper";
      description = ''
        The user the server runs as; the module creates the user
        `landscaper` when this is left at its default. It must be able to
        read the boot entries, see `group`.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "landscaper";
      description = ''
        The group the server runs as; the module creates the group
        `landscaper` when this is left at its default. The pxe-nbp
        provider writes a machine's `extra.cpio` (its `files`) with mode
        0640, owned by the user who ran `landscaper apply` and that user's
        primary group, so the server must run in that group (or as that
        user) to serve machines that have `files`.
      '';
    };

    pullDir = mkOption {
      # A string, not types.path: the directory is written at run time.
      type = types.nullOr types.str;
      default = null;
      example = "/var/lib/landscaper/pull";
      description = ''
        The pull directory (`--pull-dir`): serve pull mode's API and the
        hosts' binary cache under `/pull/v1/` on the HTTP listener, to the
        hosts `nixos.pull` members publish to this directory (their
        `pullDir`; docs/pull.md). `null` (the default) serves no pull
        API. It needs `httpListen`.

        The server makes its keys there on its first start
        (`server.pub` is what the agents' `serverKey` pins), and writes
        the nonces of signed requests and the hosts' reports, into the
        host directories `nixos.pull` makes (mode 0755, owned by whoever
        runs `landscaper apply`); it reads the desired generations
        (mode 0640) and the hosts' closures from this machine's store
        through the nix-daemon. So the service must run as the user who
        runs `landscaper apply` for the `nixos.pull` members: set `user`
        and `group` to that account. The module makes the directory
        (mode 0750, owned by `user` and `group`) with systemd-tmpfiles
        when it is missing, and it is the second place the service may
        write. It may not be under `/home`, `/root` or `/run/user`. An
        absolute path.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--max-transfers=128" "--transfer-timeout=20m" ];
      description = "More arguments for `landscaper serve`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.tftpListen != null || cfg.httpListen != null;
        message = "services.landscaper: tftpListen and httpListen are both null; the boot server needs at least one of them.";
      }
      {
        assertion = !cfg.openFirewall || (cfg.tftpListen == null || tftpPort != null) && (cfg.httpListen == null || httpPort != null);
        message = "services.landscaper.openFirewall: cannot read a port number from tftpListen (${orEmpty cfg.tftpListen}) or httpListen (${orEmpty cfg.httpListen}); write them as host:port with a numeric port.";
      }
      {
        assertion = hasPrefix "/" cfg.bootDir;
        message = "services.landscaper.bootDir (${cfg.bootDir}) must be an absolute path.";
      }
      {
        assertion = !underHome cfg.bootDir;
        message = "services.landscaper.bootDir (${cfg.bootDir}) is under /home, /root or /run/user, which the service cannot see (ProtectHome).";
      }
      {
        assertion = cfg.httpUrl == null || hasPrefix "http://" cfg.httpUrl || hasPrefix "https://" cfg.httpUrl;
        message = "services.landscaper.httpUrl (${orEmpty cfg.httpUrl}) must start with http:// or https://.";
      }
      {
        assertion = cfg.pullDir == null || cfg.httpListen != null;
        message = "services.landscaper.pullDir is set but httpListen is null: the pull API is served on the HTTP listener.";
      }
      {
        assertion = cfg.pullDir == null || hasPrefix "/" cfg.pullDir;
        message = "services.landscaper.pullDir (${orEmpty cfg.pullDir}) must be an absolute path.";
      }
      {
        assertion = cfg.pullDir == null || !underHome cfg.pullDir;
        message = "services.landscaper.pullDir (${orEmpty cfg.pullDir}) is under /home, /root or /run/user, which the service cannot see (ProtectHome).";
      }
    ];

    # The pull directory, owned by the service's user, when it is missing
    # (an existing one gets this mode and owner, not its contents).
    systemd.tmpfiles.rules = lib.mkIf (cfg.pullDir != null) [
      "d ${quotePath (orEmpty cfg.pullDir)} 0750 ${cfg.user} ${cfg.group} - -"
    ];

    # The CLI and every provider, from one bin directory: landscaper finds
    # the providers next to the store path it resolves its own binary to.
    environment.systemPackages = [ cfg.package ];

    users.users = lib.mkIf (cfg.user == "landscaper") {
      landscaper = {
        isSystemUser = true;
        group = cfg.group;
        description = "Landscaper boot server";
      };
    };
    users.groups = lib.mkIf (cfg.group == "landscaper") {
      landscaper = { };
    };

    networking.firewall = lib.mkIf cfg.openFirewall {
      allowedUDPPorts = if tftpPort == null then [ ] else [ tftpPort ];
      allowedTCPPorts = if httpPort == null then [ ] else [ httpPort ];
    };

    systemd.services.landscaper = {
      description = "Landscaper boot server (TFTP and HTTP)";
      documentation = [ "https://github.com/landscaper-nix/landscaper#the-boot-server" ];
      wantedBy = [ "multi-user.target" ];
      # A listen address with a host needs that address to be configured.
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      # The pull API reads the hosts' closures from the store with nix
      # (path-info) and nix-store (--dump).
      path = if cfg.pullDir == null then [ ] else [ config.nix.package ];

      serviceConfig = {
        ExecStart = escapeExecArgs serveArgs;
        User = cfg.user;
        Group = cfg.group;
        # SIGTERM (systemd's default) drains: running transfers get 5 s; a
        # TFTP client that stopped answering may take its retries (5 × 5 s)
        # more to drop, well within the default stop timeout.
        Restart = "on-failure";
        RestartSec = "5s";

        # Port 69 (and 80, if chosen) without root.
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
        NoNewPrivileges = true;

        # The whole file system is read-only except the boot directory,
        # where the server records, per version, which client may have a
        # machine's extra.cpio (it refuses the archive when it cannot),
        # and the pull directory, if any (keys, nonces, reports).
        # The bind mount keeps showing the old directory if bootDir is
        # removed and made again while the server runs; "-": a bootDir
        # that does not exist yet stays read-only until a restart. No
        # StateDirectory: the directories belong to whoever runs
        # `landscaper apply`, not to the server, which writes only into
        # the fetch directories the provider makes group-writable (and,
        # running as that user, into the pull directory). A pull
        # directory tmpfiles has not made yet when the service starts
        # fails the start; the restart after it finds it.
        ProtectSystem = "strict";
        ReadWritePaths = [ (quotePath "-${cfg.bootDir}") ]
          ++ (if cfg.pullDir == null then [ ] else [ (quotePath "-${cfg.pullDir}") ]);
        # /home, /root and /run/user are empty (tmpfs) rather than
        # inaccessible (true): nix (path-info, for the pull API) stats the
        # user's ~/.nix-defexpr/channels at start and aborts on "Permission
        # denied" (seen with Nix 2.8, running as a user whose home is under
        # /home), while a missing one is fine.
        ProtectHome = "tmpfs";
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        # No AF_NETLINK: the TFTP library's per-request interface lookup (for
        # an MTU clamp the server turns off) fails and is ignored.
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" ];
        SystemCallErrorNumber = "EPERM";
        UMask = "0077";
      };
    };
  };
}
