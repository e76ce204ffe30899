# Options the error cases define.
{ lib, ... }:
{
  options = {
    name = lib.mkOption { type = lib.types.str; };
    count = lib.mkOption { type = lib.types.int; default = 1; };
    maybe = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; };
    fixed = lib.mkOption { type = lib.types.str; default = "x"; readOnly = true; };
    list = lib.mkOption { type = lib.types.listOf lib.types.int; default = [ ]; };
    hosts = lib.mkOption {
      default = { };
      type = lib.types.attrsOf (lib.types.submodule {
        options.address = lib.mkOption { type = lib.types.str; };
      });
    };
  };
}
