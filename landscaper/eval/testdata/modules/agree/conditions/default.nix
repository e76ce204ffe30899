# mkIf on whole configs, inside mkMerge, nested, and on single values;
# conditions that read the configuration they define.
[
  ({ lib, config, ... }: {
    options = {
      enable = lib.mkEnableOption "it";
      other = lib.mkEnableOption "the other";
      level = lib.mkOption { type = lib.types.int; default = 0; };
      words = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
      settings = lib.mkOption { type = lib.types.attrsOf lib.types.str; default = { }; };
    };
    config = lib.mkIf config.enable {
      level = 1;
      words = [ "enabled" ];
      settings.mode = lib.mkIf config.other "other";
    };
  })
  ({ lib, config, ... }: {
    config = lib.mkMerge [
      { enable = true; }
      (lib.mkIf (config.level > 0) { words = [ "positive" ]; })
      (lib.mkIf false { words = [ "never" ]; other = true; })
      (lib.mkIf config.enable (lib.mkMerge [
        { settings.nested = "yes"; }
        (lib.mkIf (!config.other) { settings.notOther = "yes"; })
      ]))
    ];
  })
]
