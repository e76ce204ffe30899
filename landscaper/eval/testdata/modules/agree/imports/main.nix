{ lib, ... }:
{
  imports = [
    ./shared.nix
    ./leaf.nix
    ({ ... }: { items = [ "anonymous" ]; })
    { _file = "virtual.nix"; items = [ "virtual" ]; }
  ];
  options.items = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
  config.items = [ "main" ];
}
