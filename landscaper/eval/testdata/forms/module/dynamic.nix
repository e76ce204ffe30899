{ members, providers, ... }:
{
  members.e = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "[\"x\",\"y\"]" ]; }; };
  members.dyn.members = builtins.listToAttrs (map
    (n: { name = n; value = { type = providers.local.file; inputs = { name = "d-${n}"; contents = n; }; }; })
    (builtins.fromJSON members.e.outputs.stdout));
}
