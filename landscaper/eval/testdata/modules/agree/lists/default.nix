# Lists concatenated in module order, mkBefore/mkAfter/mkOrder, and mkIf
# on list elements.
[
  ({ lib, ... }: {
    options.l = lib.mkOption { type = lib.types.listOf lib.types.str; };
    options.ll = lib.mkOption { type = lib.types.listOf (lib.types.listOf lib.types.int); default = [ ]; };
    config.l = [ "a1" "a2" ];
  })
  ({ lib, ... }: { l = lib.mkAfter [ "last" ]; ll = [ [ 1 ] ]; })
  ({ lib, ... }: { l = lib.mkBefore [ "first" ]; ll = [ [ 2 3 ] ]; })
  ({ lib, ... }: { l = [ "b" (lib.mkIf false "never") (lib.mkIf true "c") ]; })
  ({ lib, ... }: { l = lib.mkOrder 750 [ "early" ]; })
]
