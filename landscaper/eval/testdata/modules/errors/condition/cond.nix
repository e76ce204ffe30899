{ lib, ... }: { count = lib.mkIf "yes" 2; }
