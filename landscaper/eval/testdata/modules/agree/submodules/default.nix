# Submodules: per-name defaults, the `name` argument, options reading
# their own config, definitions from several modules, a submodule given as
# a function, and a nested submodule.
[
  ({ lib, ... }: {
    options.hosts = lib.mkOption {
      default = { };
      type = lib.types.attrsOf (lib.types.submodule ({ name, config, ... }: {
        options = {
          hostName = lib.mkOption { type = lib.types.str; default = name; };
          address = lib.mkOption { type = lib.types.str; };
          url = lib.mkOption { type = lib.types.str; default = "ssh://${config.address}"; };
          tags = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
          disk = lib.mkOption {
            default = { };
            type = lib.types.submodule {
              options.device = lib.mkOption { type = lib.types.str; default = "/dev/sda"; };
              options.size = lib.mkOption { type = lib.types.int; default = 10; };
            };
          };
        };
      }));
    };
    options.single = lib.mkOption {
      type = lib.types.submodule { options.x = lib.mkOption { type = lib.types.int; default = 1; }; };
      default = { };
    };
    config.hosts.web.address = "10.0.0.1";
  })
  ({ lib, config, ... }: {
    hosts.web.tags = [ "web" ];
    hosts.db = { name, ... }: { address = "10.0.0.2"; tags = [ name ]; disk.size = 20; };
    single.x = config.hosts.db.disk.size;
  })
  ({ lib, ... }: { hosts.db.disk.device = lib.mkForce "/dev/vdb"; })
]
