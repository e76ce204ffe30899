# The options every module deployment has: members, providers, rollouts.
#
# Members merge by name across modules; a member's `type` must be the same
# wherever it is defined, and its `inputs` merge attribute by attribute.
# Nothing here evaluates a member's inputs: which members exist and their
# types are known without them, and each input is evaluated only where it
# is read, so an output not known yet fails only the inputs that use it.
{ lib, ... }:
let
  inherit (builtins) attrNames elem filter head isAttrs isString mapAttrs;
  inherit (lib) mkOption types;
  inherit (lib.modules) byName isDefinedLazily mergeDefinitions mergeEqualWith resolve showLoc;

  resourceType = lib.mkOptionType {
    name = "resourceType";
    description = "resource type (providers.<provider>.<type>)";
    check = v: isString v || (isAttrs v && (v._type or null) == "landscaperResourceType");
    merge = mergeEqualWith (v: if isString v then builtins.toJSON v else "providers.${v.provider}.${v.name}");
  };

  # mergeMembers merges definitions of a set of members (the top-level
  # `members`, or a group's). A member whose definitions are all mkIf
  # false does not exist.
  mergeMembers = prefix: loc: defs:
    mapAttrs (n: ds: mergeMember (if prefix == "" then n else "${prefix}.${n}") (loc ++ [ n ]) ds)
      (lib.filterAttrs (_: ds: isDefinedLazily { isDefined = (resolve loc ds).defs != [ ]; }) (byName loc defs));

  # mergeMember merges the definitions of one member: type, inputs, or
  # the members of a group. An attribute is there when a module names it.
  mergeMember = key: loc: defs:
    let
      resolved = (resolve loc defs).defs;
      notSets = filter (d: !isAttrs d.value) resolved;
      named = byName loc resolved;
      unknown = filter (n: !(elem n [ "type" "inputs" "members" ])) (attrNames named);
      value = n: ds:
        if n == "type" then
          let m = mergeDefinitions (loc ++ [ n ]) resourceType ds; in
          if m.isDefined then m.value else throw "landscaper: member ${key}: `type` has no value (every definition of it is mkIf false)"
        else if n == "inputs" then
          let m = mergeDefinitions (loc ++ [ n ]) types.anything ds; in
          if m.isDefined then m.value else { }
        else mergeMembers key (loc ++ [ n ]) ds;
    in
    if notSets != [ ] then
      throw "landscaper: member ${key} is not an attribute set (in ${(head notSets).file})"
    else if unknown != [ ] then
      throw "landscaper: member ${key}: unknown attribute `${head unknown}` in ${(head named.${head unknown}).file} (a member has `type` and `inputs`, or `members`)"
    else mapAttrs value named;

  membersType = lib.mkOptionType {
    name = "members";
    description = "Landscaper members";
    check = isAttrs;
    merge = mergeMembers "";
  };
in
{
  options = {
    members = mkOption {
      type = membersType;
      default = { };
      description = ''
        The deployment's resources by name: `{ type = providers.<provider>.<type>; inputs = { ... }; }`,
        or a group `{ members = { ... }; }`.
      '';
    };
    providers = mkOption {
      type = types.attrsOf (types.submodule {
        options.executable = mkOption {
          type = types.anything;
          description = "The provider's binary: a path, a store path or a package.";
        };
        options.protocol = mkOption {
          type = types.nullOr (types.enum [ "landscaper" "nixops4" ]);
          default = null;
          description = "The protocol it speaks: Landscaper's (the default) or NixOps4's v0 (docs/nixops4.md).";
        };
        options.args = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Arguments a NixOps4 provider is started with.";
        };
        options.resourceTypes = mkOption {
          type = types.attrsOf types.anything;
          default = { };
          description = "A NixOps4 provider's types: `<type> = { inputs = [ ... ]; outputs = [ ... ]; requireState ? false; }`.";
        };
      });
      default = { };
      description = "Providers the deployment declares, beside the built-in ones.";
    };
    rollouts = mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          members = mkOption {
            type = types.listOf types.str;
            description = "The members updated by this rollout, by path, in update order.";
          };
          batchSize = mkOption { type = types.int; default = 1; description = "How many members are updated at a time."; };
          maxFailures = mkOption { type = types.int; default = 0; description = "How many failures a batch may have before the rollout stops."; };
        };
      });
      default = { };
      description = "Rolling updates of groups of members.";
    };
  };
}
