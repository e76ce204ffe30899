# A stand-in for the few parts of nixpkgs' lib that flake.nix,
# landscaper/nixos-module.nix and landscaper/agent-module.nix use, so
# that the packaging test can evaluate them without nixpkgs. It mimics their shape, not their full behaviour:
# options are plain attribute sets, mkIf and mkDefault are markers that
# eval-module.nix resolves, and filesets are lists of paths.
#
# When the module or the flake starts using another lib function, the
# test fails with "attribute '<name>' missing": add it here.
rec {
  mkOption = attrs: attrs // { _type = "option"; };

  mkEnableOption = name: mkOption {
    type = types.bool;
    default = false;
    description = "Whether to enable ${name}.";
  };

  mkIf = condition: content: { _type = "if"; inherit condition content; };

  mkDefault = content: { _type = "override"; priority = 1000; inherit content; };

  literalExpression = text: { _type = "literalExpression"; inherit text; };

  # Each type is a name and a check of a value, like lib.types' check.
  types = {
    bool = { name = "bool"; check = builtins.isBool; };
    str = { name = "str"; check = builtins.isString; };
    path = {
      name = "path";
      check = v: builtins.isPath v || (builtins.isString v && builtins.substring 0 1 v == "/");
    };
    package = {
      name = "package";
      check = v: builtins.isAttrs v && (v.type or null) == "derivation";
    };
    nullOr = t: { name = "null or ${t.name}"; check = v: v == null || t.check v; };
    listOf = t: { name = "list of ${t.name}"; check = v: builtins.isList v && builtins.all t.check v; };
    either = a: b: { name = "${a.name} or ${b.name}"; check = v: a.check v || b.check v; };
  };

  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);

  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];

  # A fileset here is a list of paths; difference keeps both sides so the
  # test can look at what the flake leaves out of the source.
  fileset = {
    maybeMissing = path: if builtins.pathExists path then [ path ] else [ ];
    unions = builtins.concatLists;
    difference = root: excluded: { inherit root excluded; };
    toSource = { root, fileset }: { outPath = root; inherit fileset; };
  };
}
