# The `options` argument: isDefined, value and highestPrio of options.
[
  ({ lib, ... }: {
    options = {
      set = lib.mkOption { type = lib.types.int; default = 1; };
      unset = lib.mkOption { type = lib.types.nullOr lib.types.int; };
      report = lib.mkOption { type = lib.types.attrsOf lib.types.anything; };
    };
  })
  ({ lib, options, ... }: {
    set = lib.mkDefault 2;
    report = {
      setDefined = options.set.isDefined;
      setValue = options.set.value;
      setPrio = options.set.highestPrio;
      unsetDefined = options.unset.isDefined;
    };
  })
]
