# The `lib` a deployment's modules receive: builtins, everyday helpers
# (helpers.nix), the module system (modules.nix) and option types
# (types.nix), under the names nixpkgs' lib gives them.
#
# isStandIn tells the stand-in of an output not known yet: it passes every
# type check (the value is checked by the provider once it is known).
{ isStandIn ? (_: false) }:
let
  helpers = import ./helpers.nix;
  modules = import ./modules.nix { inherit lib isStandIn; };
  types = import ./types.nix { inherit lib modules; };
  lib = builtins // helpers // {
    inherit modules types;
    inherit (modules) evalModules mkIf mkMerge mkOverride mkOptionDefault
      mkDefault mkForce mkOrder mkBefore mkAfter;
    inherit (types) mkOptionType;

    # mkOption declares an option: type, default, description, example,
    # apply, readOnly.
    mkOption = attrs: attrs // { _type = "option"; };

    # mkEnableOption declares a boolean option that is false by default.
    mkEnableOption = name: lib.mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
  };
in
lib
