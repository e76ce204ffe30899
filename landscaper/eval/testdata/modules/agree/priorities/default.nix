# mkDefault, mkForce, mkOverride and mkOptionDefault against plain
# definitions and defaults; only the highest priority counts.
[
  ({ lib, ... }: {
    options = {
      a = lib.mkOption { type = lib.types.str; default = "default"; };
      b = lib.mkOption { type = lib.types.str; default = "default"; };
      c = lib.mkOption { type = lib.types.str; };
      d = lib.mkOption { type = lib.types.listOf lib.types.int; default = [ 0 ]; };
      e = lib.mkOption { type = lib.types.int; };
      f = lib.mkOption { type = lib.types.attrsOf lib.types.str; default = { x = "default"; }; };
    };
    config = {
      a = lib.mkDefault "weak";
      b = "plain";
      c = lib.mkForce "forced";
      d = lib.mkDefault [ 1 ];
      e = lib.mkOverride 10 1;
      f.y = "plain";
    };
  })
  ({ lib, ... }: {
    b = lib.mkDefault "weak";
    c = "plain";
    d = [ 2 ];
    e = lib.mkForce 2;
    f = lib.mkForce { z = "forced"; };
  })
  ({ lib, ... }: {
    d = [ 3 ];
    e = lib.mkOptionDefault 3;
  })
]
