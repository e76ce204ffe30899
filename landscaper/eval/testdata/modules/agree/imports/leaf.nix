{ config, ... }:
{
  imports = [ ./shared.nix ];
  items = [ "leaf with ${toString config.sharedCount}" ];
  sharedCount = 7;
}
