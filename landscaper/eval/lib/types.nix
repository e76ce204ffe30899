# Option types: what a definition must be (check) and how several
# definitions become one value (merge). Names and descriptions follow
# nixpkgs' lib.types.
{ lib, modules }:
let
  inherit (builtins) all attrNames concatLists concatStringsSep elem filter
    foldl' head isAttrs isBool isFloat isFunction isInt isList isPath isString
    length map mapAttrs substring toJSON typeOf;
  inherit (modules) mergeDefinitions mergeEqual mergeOne showLoc showFiles
    byName isDefinedLazily;

  isStringLike = x: isString x || isPath x || (isAttrs x && (x ? outPath || x ? __toString));
  values = defs: map (d: d.value) defs;
in
rec {
  # mkOptionType makes a type; check and merge default to accepting
  # anything and merging like `unspecified`.
  mkOptionType = { name, description ? name, check ? (_: true), merge ? mergeDefault, ... }@t:
    t // { _type = "option-type"; inherit name description check merge; };

  # mergeDefault merges lists by concatenation, sets by update, booleans
  # by `or` and strings by concatenation; other values must be equal.
  mergeDefault = loc: defs:
    let vs = values defs; in
    if length vs == 1 then head vs
    else if all isFunction vs then x: mergeDefault (loc ++ [ "<function body>" ]) (map (d: d // { value = d.value x; }) defs)
    else if all isList vs then concatLists vs
    else if all isAttrs vs then foldl' (a: b: a // b) { } vs
    else if all isBool vs then builtins.any (x: x) vs
    else if all isString vs then concatStringsSep "" vs
    else if all isInt vs && all (x: x == head vs) vs then head vs
    else throw "landscaper: option `${showLoc loc}`: cannot merge the definitions in ${showFiles defs}";

  unspecified = mkOptionType { name = "unspecified"; description = "unspecified value"; };
  raw = mkOptionType { name = "raw"; description = "raw value"; merge = mergeOne; };

  str = mkOptionType { name = "str"; description = "string"; check = isString; merge = mergeEqual; };
  nonEmptyStr = mkOptionType {
    name = "nonEmptyStr";
    description = "non-empty string";
    check = x: isString x && builtins.match "[ \t\n]*" x == null;
    merge = mergeEqual;
  };
  lines = mkOptionType {
    name = "lines";
    description = "strings concatenated with \"\\n\"";
    check = isString;
    merge = _: defs: concatStringsSep "\n" (values defs);
  };
  int = mkOptionType { name = "int"; description = "signed integer"; check = isInt; merge = mergeEqual; };
  port = mkOptionType {
    name = "port";
    description = "16 bit unsigned integer; between 0 and 65535 (both inclusive)";
    check = x: isInt x && x >= 0 && x <= 65535;
    merge = mergeEqual;
  };
  float = mkOptionType { name = "float"; description = "floating point number"; check = isFloat; merge = mergeEqual; };
  bool = mkOptionType { name = "bool"; description = "boolean"; check = isBool; merge = mergeEqual; };
  path = mkOptionType {
    name = "path";
    description = "absolute path";
    check = x: isStringLike x && substring 0 1 (toString x) == "/";
    merge = mergeEqual;
  };
  package = mkOptionType {
    name = "package";
    description = "package";
    check = x: (isAttrs x && x ? outPath) || (isString x && substring 0 1 x == "/");
    merge = mergeOne;
  };
  attrs = mkOptionType {
    name = "attrs";
    description = "attribute set";
    check = isAttrs;
    merge = _: defs: foldl' (a: b: a // b) { } (values defs);
    emptyValue.value = { };
  };

  enum = choices: mkOptionType {
    name = "enum";
    description =
      if length choices == 1 then "value ${toJSON (head choices)} (singular enum)"
      else "one of ${concatStringsSep ", " (map toJSON choices)}";
    check = x: elem x choices;
    merge = mergeEqual;
  };

  listOf = elemType: mkOptionType {
    name = "listOf";
    description = "list of ${elemType.description}";
    check = isList;
    emptyValue.value = [ ];
    # Each element is merged on its own: an element may be mkIf false.
    merge = loc: defs: map (m: m.value) (filter (m: m.isDefined) (concatLists (lib.imap1
      (n: d: lib.imap1
        (i: v: mergeDefinitions (loc ++ [ "[definition ${toString n}-entry ${toString i}]" ]) elemType [{ inherit (d) file; value = v; }])
        d.value)
      defs)));
  };

  attrsOf = elemType: mkOptionType {
    name = "attrsOf";
    description = "attribute set of ${elemType.description}";
    check = isAttrs;
    emptyValue.value = { };
    merge = loc: defs:
      let merged = mapAttrs (n: ds: mergeDefinitions (loc ++ [ n ]) elemType ds) (byName loc defs); in
      mapAttrs (_: m: m.value) (lib.filterAttrs (_: m: m.isDefined) merged);
  };

  # lazyAttrsOf keeps every name defined, without evaluating values: an
  # attribute whose definitions are all mkIf false fails where it is read.
  lazyAttrsOf = elemType: mkOptionType {
    name = "lazyAttrsOf";
    description = "lazy attribute set of ${elemType.description}";
    check = isAttrs;
    emptyValue.value = { };
    merge = loc: defs: mapAttrs (n: ds: (mergeDefinitions (loc ++ [ n ]) elemType ds).value) (byName loc defs);
  };

  nullOr = elemType: mkOptionType {
    name = "nullOr";
    description = "null or ${elemType.description}";
    check = x: x == null || elemType.check x;
    emptyValue.value = null;
    merge = loc: defs:
      let nulls = filter (d: d.value == null) defs; in
      if length nulls == length defs then null
      else if nulls != [ ] then
        throw "landscaper: option `${showLoc loc}` is defined both null (in ${showFiles nulls}) and not null (in ${showFiles (filter (d: d.value != null) defs)})"
      else elemType.merge loc defs;
  };

  either = a: b: mkOptionType {
    name = "either";
    description = "${a.description} or ${b.description}";
    check = x: a.check x || b.check x;
    merge = loc: defs:
      if all (d: a.check d.value) defs then a.merge loc defs
      else if all (d: b.check d.value) defs then b.merge loc defs
      else mergeOne loc defs;
  };
  oneOf = ts: foldl' either (head ts) (builtins.tail ts);

  # anything merges sets attribute by attribute (the values are merged
  # only when read, so an attribute that holds an output not known yet
  # fails alone), lists and other values only when equal, and functions
  # by merging their results.
  anything = mkOptionType {
    name = "anything";
    description = "anything";
    merge = loc: defs:
      let
        kindOf = v: if isAttrs v && isStringLike v then "stringCoercibleSet" else typeOf v;
        kind = foldl'
          (k: d: if kindOf d.value == k then k
          else throw "landscaper: option `${showLoc loc}` has definitions of different types in ${showFiles defs}")
          (kindOf (head defs).value)
          defs;
        merged = mapAttrs (n: ds: mergeDefinitions (loc ++ [ n ]) anything ds) (byName loc defs);
      in
      if kind == "set" then mapAttrs (_: m: m.value) (lib.filterAttrs (_: isDefinedLazily) merged)
      else if kind == "lambda" && length defs > 1 then
        x: anything.merge (loc ++ [ "<function body>" ]) (map (d: d // { value = d.value x; }) defs)
      else if kind == "stringCoercibleSet" then mergeOne loc defs
      else mergeEqual loc defs;
  };

  # submodule: a set of options of its own; each definition is a module
  # of it. Its modules receive `name`, the last name of its path.
  submodule = ms:
    let
      evalAt = loc: defs: modules.evalModules {
        modules = lib.toList ms ++ map (d: { _file = d.file; imports = [ d.value ]; }) defs;
        specialArgs.name = lib.last loc;
        prefix = loc;
        definedIn = map (d: d.file) defs;
      };
    in
    mkOptionType {
      name = "submodule";
      description = "submodule";
      check = x: isAttrs x || isFunction x || isPath x;
      merge = loc: defs: (evalAt loc defs).config;
      # Without definitions: the submodule's defaults.
      emptyValue.value = (evalAt [ "<name>" ] [ ]).config;
    };
}
