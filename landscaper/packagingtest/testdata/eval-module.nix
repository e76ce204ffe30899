# Evaluates one of the NixOS modules (landscaper/nixos-module.nix, or
# landscaper/agent-module.nix) with the stub lib, once per case, the way
# the module system would use it: option declarations first (without
# config), then config from each option's default overridden by the
# case's settings. mkIf and mkDefault are resolved; a disabled mkIf
# becomes an empty attribute set.
#
# root: the repository; cases: JSON, case name -> services.<name>
# settings (package is always a fake derivation; a setting
# { "__path": "p" } is the Nix path of the repository's file p);
# module: the module's file in the repository; name: its
# services.<name>, which is also the name of its systemd service.
{ root, cases, module ? "landscaper/nixos-module.nix", name ? "landscaper" }:
let
  lib = import ./stub-lib.nix;
  moduleFn = import (root + "/${module}");

  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pkgs = { ipxe = fakeDrv "ipxe"; util-linux = fakeDrv "util-linux"; };
  # What the modules read of the rest of the NixOS configuration.
  otherConfig = { nix.package = fakeDrv "nix"; };

  declared = (moduleFn {
    inherit lib pkgs;
    config = throw "the option declarations read config";
  }).options.services.${name};

  resolve = v:
    if builtins.isAttrs v && (v._type or null) == "if" then
      (if v.condition then resolve v.content else { })
    else if builtins.isAttrs v && (v._type or null) == "override" then
      resolve v.content
    else if builtins.isAttrs v && !(v ? outPath) then
      builtins.mapAttrs (_: resolve) v
    else if builtins.isList v then
      map resolve v
    else
      v;

  # JSON has no Nix paths: { __path = "p"; } is the repository's file p.
  fromCase = v: if builtins.isAttrs v && v ? __path then root + "/${v.__path}" else v;

  evalCase = settings0:
    let
      settings = { package = fakeDrv "landscaper"; } // builtins.mapAttrs (_: fromCase) settings0;
      values = builtins.mapAttrs
        (option: o:
          if settings ? ${option} then settings.${option}
          else if o ? default then o.default
          else throw "services.${name}.${option} has no default and the case does not set it")
        declared;
      out = resolve (moduleFn {
        inherit lib pkgs;
        config = otherConfig // { services.${name} = values; };
      }).config;
      unit = out.systemd.services.${name} or null;
    in
    {
      unknownSettings = builtins.filter (n: !(declared ? ${n})) (builtins.attrNames settings);
      badTypes = builtins.filter (n: !(declared.${n}.type.check values.${n})) (builtins.attrNames values);
      configKeys = builtins.attrNames out;
      failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) (out.assertions or [ ]));
      execStart = if unit == null then null else unit.serviceConfig.ExecStart;
      serviceConfig = if unit == null then null else unit.serviceConfig;
      wantedBy = if unit == null then null else unit.wantedBy;
      # The whole systemd.services.<name>, to write its unit file.
      inherit unit;
      # A disabled mkIf of a list defines nothing: no rules.
      tmpfiles = let r = out.systemd.tmpfiles.rules or [ ]; in if builtins.isList r then r else [ ];
      firewall = out.networking.firewall or { };
      systemPackages = map toString (out.environment.systemPackages or [ ]);
      users = builtins.attrNames (out.users.users or { });
      groups = builtins.attrNames (out.users.groups or { });
    };
in
{
  options = builtins.mapAttrs
    (name: o: {
      type = o.type.name;
      hasDefault = o ? default;
      default = if o ? default then o.default else null;
      description = o.description or "";
    })
    declared;
  cases = builtins.mapAttrs (_: evalCase) (builtins.fromJSON cases);
}
