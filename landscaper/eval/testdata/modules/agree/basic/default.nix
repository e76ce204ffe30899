# Options of the basic types, with and without defaults, defined in two
# modules; mkEnableOption; a shorthand module beside an explicit one.
[
  ({ lib, ... }: {
    options = {
      name = lib.mkOption { type = lib.types.str; description = "A name."; };
      count = lib.mkOption { type = lib.types.int; default = 3; };
      ratio = lib.mkOption { type = lib.types.float; default = 0.5; };
      verbose = lib.mkOption { type = lib.types.bool; default = false; };
      web.enable = lib.mkEnableOption "the web server";
      web.port = lib.mkOption { type = lib.types.port; default = 80; };
      untyped = lib.mkOption { default = [ "a" ]; };
      greeting = lib.mkOption { type = lib.types.str; default = "hi"; apply = s: s + "!"; };
    };
    config.name = "alpha";
  })
  ({ config, ... }: {
    web.enable = true;
    web.port = config.count + 8000;
    count = 5;
    untyped = [ "b" ];
  })
  { untyped = [ "c" ]; verbose = true; }
]
