# The module system: modules with `imports`, `options` and `config`, and
# definitions with mkIf, mkMerge, mkOverride and mkOrder, merged the way
# NixOS merges them. docs/modules.md describes the subset and where it
# differs from nixpkgs' lib.evalModules.
#
# A definition is { file; value; }: the value and the file it came from,
# for error messages. Errors are thrown as "landscaper: ..." on one line,
# which the engine shows without nix's trace.
{ lib, isStandIn }:
let
  inherit (builtins) attrNames concatMap concatStringsSep elem filter foldl'
    genList head isAttrs isBool isFunction isList isPath isString length map
    mapAttrs removeAttrs sort tail toJSON tryEval typeOf zipAttrsWith;
in
rec {
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  mkOrder = priority: content: { _type = "order"; inherit priority content; };
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;

  # The priority of a definition without mkOverride, and of one without
  # mkOrder.
  defaultPriority = 100;
  defaultOrder = 1000;

  # propertyOf is "if", "merge", "override" or "order" for a value made by
  # the functions above, else null.
  propertyOf = v:
    let t = if isAttrs v then v._type or null else null; in
    if elem t [ "if" "merge" "override" "order" ] then t else null;

  # showLoc shows an option's path as NixOS does: names joined with dots,
  # quoted when they are not plain identifiers.
  showLoc = loc: concatStringsSep "." (map
    (n: if builtins.match "[a-zA-Z_][a-zA-Z0-9_'-]*" n != null then n else toJSON n)
    loc);

  # showValue shows a definition's value in an error, briefly.
  showValue = v:
    if isString v || builtins.isInt v || isBool v || v == null || builtins.isFloat v then toJSON v
    else if isPath v then toString v
    else if isFunction v then "a function"
    else if isList v then "a list"
    else if v ? outPath then toString v.outPath
    else if (v._type or null) == "landscaperResourceType" then "providers.${v.provider}.${v.name}"
    else "an attribute set";

  showFiles = defs: concatStringsSep " and " (lib.unique (map (d: d.file) defs));

  # discharge turns a value with mkMerge and mkIf into the values it
  # stands for (none when a condition is false).
  discharge = loc: file: v:
    let p = propertyOf v; in
    if p == "merge" then concatMap (discharge loc file) v.contents
    else if p == "if" then
      if !isBool v.condition then
        throw "landscaper: option `${showLoc loc}`: the condition of mkIf in ${file} is not a boolean but ${typeOf v.condition}"
      else if v.condition then discharge loc file v.content
      else [ ]
    else [ v ];

  # pushDown turns a definition of a set of options (which may be wrapped in
  # mkIf, mkMerge, mkOverride or mkOrder) into attribute sets whose values
  # carry those properties. Conditions are not evaluated here, so the names
  # a module defines never depend on the configuration.
  pushDown = loc: file: v:
    let
      p = propertyOf v;
      wrap = f: map (mapAttrs (_: f)) (pushDown loc file v.content);
    in
    if p == "merge" then concatMap (pushDown loc file) v.contents
    else if p == "if" then wrap (mkIf v.condition)
    else if p == "override" then wrap (mkOverride v.priority)
    else if p == "order" then wrap (mkOrder v.priority)
    else if isAttrs v then [ v ]
    else throw "landscaper: ${if loc == [ ] then "the configuration" else "option `${showLoc loc}`"} in ${file} must be an attribute set, not ${showValue v}";

  # byName pushes definitions of a set down and groups them by attribute
  # name: { name = [ { file; value; } ... ]; }. Only names are evaluated.
  byName = loc: defs:
    zipAttrsWith (_: ds: ds)
      (concatMap (d: map (set: mapAttrs (_: value: { inherit (d) file; inherit value; }) set) (pushDown loc d.file d.value)) defs);

  priorityOf = v: if propertyOf v == "override" then v.priority else defaultPriority;
  orderOf = v: if propertyOf v == "order" then v.priority else defaultOrder;

  # resolve keeps, of the definitions, those of the highest priority (the
  # lowest number), without mkOverride, in the order mkOrder gives them.
  resolve = loc: defs:
    let
      discharged = concatMap (d: map (value: { inherit (d) file; inherit value; }) (discharge loc d.file d.value)) defs;
      highestPrio = foldl' (p: d: let q = priorityOf d.value; in if q < p then q else p) 9999 discharged;
      strip = p: d: if propertyOf d.value == p then d // { value = d.value.content; } else d;
      kept = concatMap (d: if priorityOf d.value == highestPrio then [ (strip "override" d) ] else [ ]) discharged;
    in
    {
      inherit highestPrio;
      # builtins.sort is stable: definitions of one order keep theirs.
      defs = map (strip "order") (sort (a: b: orderOf a.value < orderOf b.value) kept);
    };

  # mergeDefinitions merges definitions of type `type` at loc. Without
  # any, the value is the type's emptyValue, if it has one.
  mergeDefinitions = loc: type: defs:
    let
      resolved = resolve loc defs;
      final = resolved.defs;
      invalid = filter (d: !(type.check d.value || isStandIn d.value)) final;
    in
    {
      inherit (resolved) highestPrio;
      isDefined = final != [ ];
      definitions = final;
      value =
        if final == [ ] then type.emptyValue.value or (throw "landscaper: option `${showLoc loc}` is used but has no value")
        else if invalid != [ ] then
          let d = head invalid; in
          throw "landscaper: option `${showLoc loc}`: the definition in ${d.file} is not of type `${type.description}`: ${showValue d.value}"
        else type.merge loc final;
    };

  # isDefinedLazily says whether a merge has a value, without failing when
  # deciding that needs a value that throws (an output not known yet): such
  # an attribute is kept, and throws where it is read.
  isDefinedLazily = merged: let t = tryEval merged.isDefined; in !t.success || t.value;

  # Merge functions of types.
  mergeEqualWith = show: loc: defs:
    if length defs == 1 then (head defs).value
    else
      (foldl'
        (first: d:
          if d.value != first.value then
            throw "landscaper: option `${showLoc loc}` has conflicting definitions: ${show first.value} in ${first.file} and ${show d.value} in ${d.file} (mkForce or mkDefault chooses one)"
          else first)
        (head defs)
        (tail defs)).value;
  mergeEqual = mergeEqualWith showValue;
  mergeOne = loc: defs:
    if length defs == 1 then (head defs).value
    else throw "landscaper: option `${showLoc loc}` may be defined only once, but is defined in ${showFiles defs}";

  isOption = v: isAttrs v && (v._type or null) == "option";

  # evalModules evaluates a list of modules: { config; options; }.
  # specialArgs are passed to every module function beside lib, config and
  # options; prefix is the path of a submodule's options, for messages.
  # definedIn are the files that define a submodule, for messages.
  evalModules = { modules, specialArgs ? { }, prefix ? [ ], definedIn ? [ ] }:
    let
      args = { inherit lib config options; } // specialArgs;

      # load turns a module (a path, a function or an attribute set) into
      # { key; file; imports; options; config; }. The key makes a file
      # imported twice count once.
      load = file: key: m:
        if isPath m || (isString m && lib.hasPrefix "/" m) then
          loadSet (toString m) (toString m) (apply (toString m) (import m))
        else loadSet file key (apply file m);
      apply = file: m: if isFunction m then m args else m;
      loadSet = file0: key0: m:
        let
          file = toString (m._file or file0);
          key = toString (m.key or key0);
          explicit = m ? options || m ? config;
          extra = filter (n: !(elem n [ "imports" "options" "config" "_file" "key" ])) (attrNames m);
          imports = m.imports or [ ];
        in
        if !isAttrs m then
          throw "landscaper: the module in ${file0} is ${typeOf m}; a module is an attribute set, or a function or file that gives one"
        else if explicit && extra != [ ] then
          throw "landscaper: the module in ${file} has `${head extra}` beside `${if m ? config then "config" else "options"}`: with `options` or `config`, a module's definitions go inside `config`"
        else if !isList imports then
          throw "landscaper: `imports` in ${file} must be a list"
        else {
          inherit key file imports;
          options = m.options or { };
          config = if explicit then m.config or { } else removeAttrs m [ "imports" "_file" "key" ];
        };

      collected = builtins.genericClosure {
        startSet = lib.imap0 (i: load "<unknown-file>" "module-${toString i}") modules;
        operator = m: lib.imap0 (i: load m.file "${m.key}:import-${toString i}") m.imports;
      };

      # declarations merges the option declarations of every module into
      # one tree whose leaves are options, each with the file that
      # declared it.
      declarations = declare prefix (map (m: { inherit (m) file; value = m.options; }) collected);
      declare = loc: decls:
        let
          opts = filter (d: isOption d.value) decls;
          sets = filter (d: !(isOption d.value)) decls;
          notSets = filter (d: !isAttrs d.value) sets;
        in
        if notSets != [ ] then
          throw "landscaper: `options.${showLoc loc}` in ${(head notSets).file} is neither an option (mkOption) nor a set of options"
        else if opts == [ ] then
          zipAttrsWith (n: ds: declare (loc ++ [ n ]) ds)
            (map (d: mapAttrs (_: value: { inherit (d) file; inherit value; }) d.value) sets)
        else if length opts > 1 then
          throw "landscaper: option `${showLoc loc}` is declared twice: in ${(head opts).file} and ${(builtins.elemAt opts 1).file}"
        else if builtins.any (d: d.value != { }) sets then
          throw "landscaper: option `${showLoc loc}` declared in ${(head opts).file} is also a set of options in ${(head sets).file}"
        else
          let o = (head opts).value; in
          o // { declaredIn = (head opts).file; type = o.type or lib.types.unspecified; };

      # evaluate gives the tree of options, each merged with its
      # definitions; every definition must be of a declared option.
      evaluate = loc: decl: defs:
        if isOption decl then evalOption loc decl defs
        else
          let
            named = byName loc defs;
            undeclared = filter (n: !(decl ? ${n})) (attrNames named);
            n = head undeclared;
          in
          if undeclared != [ ] then
            throw "landscaper: option `${showLoc (loc ++ [ n ])}` does not exist (defined in ${showFiles named.${n}})${lib.didYouMean n (attrNames decl)}"
          else mapAttrs (n: d: evaluate (loc ++ [ n ]) d (named.${n} or [ ])) decl;

      evalOption = loc: decl: defs:
        let
          defaults = if decl ? default then [{ file = decl.declaredIn; value = mkOptionDefault decl.default; }] else [ ];
          merged = mergeDefinitions loc decl.type (defaults ++ defs);
          value =
            if !merged.isDefined && !((decl.type.emptyValue or { }) ? value) then
              throw "landscaper: option `${showLoc loc}` has no value: it is declared in ${decl.declaredIn} without a default, and ${if definedIn == [ ] then "no module defines it" else "the definition of `${showLoc prefix}` in ${concatStringsSep " and " (lib.unique definedIn)} does not give it one"}"
            else if (decl.readOnly or false) && length merged.definitions > 1 then
              throw "landscaper: option `${showLoc loc}` is read-only, but is defined in ${showFiles merged.definitions}"
            else merged.value;
        in
        decl // {
          inherit loc;
          inherit (merged) isDefined highestPrio;
          value = if decl ? apply then decl.apply value else value;
          files = lib.unique (map (d: d.file) defs);
          definitions = map (d: d.value) merged.definitions;
          definitionsWithLocations = merged.definitions;
          declarations = [ decl.declaredIn ];
        };

      mapOptions = f: t: if isOption t then f t else mapAttrs (_: mapOptions f) t;

      # Definitions are merged in the reverse order of the modules, as
      # nixpkgs does: lists are concatenated in that order.
      options = evaluate prefix declarations (lib.reverseList (map (m: { inherit (m) file; value = m.config; }) collected));
      config = mapOptions (o: o.value) options;
    in
    { inherit config options; };
}
