# attrsOf and lazyAttrsOf merged from several modules, attrs (shallow), and
# anything merging nested sets attribute by attribute.
[
  ({ lib, ... }: {
    options = {
      ports = lib.mkOption { type = lib.types.attrsOf lib.types.int; default = { }; };
      nested = lib.mkOption { type = lib.types.attrsOf (lib.types.attrsOf lib.types.bool); default = { }; };
      lazy = lib.mkOption { type = lib.types.lazyAttrsOf lib.types.str; default = { }; };
      shallow = lib.mkOption { type = lib.types.attrs; default = { }; };
      free = lib.mkOption { type = lib.types.anything; default = { }; };
    };
    config = {
      ports.http = 80;
      nested.a.x = true;
      lazy.one = "1";
      shallow = { a = { x = 1; }; };
      free = { a.b = 1; list = [ 1 2 ]; s = "s"; };
    };
  })
  ({ lib, ... }: {
    ports = { https = 443; ssh = lib.mkIf false 22; };
    nested.a.y = false;
    nested.b = { };
    lazy.two = "2";
    shallow = { a = { y = 2; }; b = 3; };
    free = { a.c = 2; s = "s"; d = lib.mkIf true "yes"; e = lib.mkIf false "no"; };
  })
]
