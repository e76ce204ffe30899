# Evaluates landscaper/nixos-module.nix with the stub lib, once per case,
# the way the module system would use it: option declarations first
# (without config), then config from each option's default overridden by
# the case's settings. mkIf and mkDefault are resolved; a disabled mkIf
# becomes an empty attribute set.
#
# root: the repository; cases: JSON, case name -> services.landscaper
# settings (package is always a fake derivation).
{ root, cases }:
let
  lib = import ./stub-lib.nix;
  module = import (root + "/landscaper/nixos-module.nix");

  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pkgs = { ipxe = fakeDrv "ipxe"; };

  declared = (module {
    inherit lib pkgs;
    config = throw "the option declarations read config";
  }).options.services.landscaper;

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

  evalCase = settings0:
    let
      settings = { package = fakeDrv "landscaper"; } // settings0;
      values = builtins.mapAttrs
        (name: o:
          if settings ? ${name} then settings.${name}
          else if o ? default then o.default
          else throw "services.landscaper.${name} has no default and the case does not set it")
        declared;
      out = resolve (module {
        inherit lib pkgs;
        config.services.landscaper = values;
      }).config;
      unit = out.systemd.services.landscaper or null;
    in
    {
      unknownSettings = builtins.filter (n: !(declared ? ${n})) (builtins.attrNames settings);
      badTypes = builtins.filter (n: !(declared.${n}.type.check values.${n})) (builtins.attrNames values);
      configKeys = builtins.attrNames out;
      failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) (out.assertions or [ ]));
      execStart = if unit == null then null else unit.serviceConfig.ExecStart;
      serviceConfig = if unit == null then null else unit.serviceConfig;
      wantedBy = if unit == null then null else unit.wantedBy;
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
