{ lib, ... }:
{
  options.sharedCount = lib.mkOption { type = lib.types.int; default = 0; };
  config.items = [ "shared" ];
}
