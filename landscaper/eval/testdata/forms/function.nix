# A deployment function; module/ is the same deployment as modules.
{ members, providers, ... }:
let sha = members.a.outputs.sha256; in
{
  members.a = { type = providers.local.file; inputs = { name = "a"; contents = "hello"; }; };
  members.pass = { type = providers.local.file; inputs = { name = "p"; contents = sha; mode = "0600"; }; };
  members.interp = { type = providers.local.file; inputs = { name = "i"; contents = "sha=${sha}!"; }; };
  members.hash = { type = providers.local.file; inputs = { name = "h"; contents = builtins.hashString "sha256" sha; }; };
  members.nested = { type = providers.local.file; inputs = { name = "n"; deep = { list = [ 1 sha ]; plain = "x"; }; }; };
  members.group = { members.inner = { type = "local.file"; inputs = { name = "g"; contents = members.pass.outputs.sha256; }; }; };
  members.e = { type = providers.local.exec; inputs = { executable = "printf"; args = [ "[\"x\",\"y\"]" ]; }; };
  members.dyn.members = builtins.listToAttrs (map
    (n: { name = n; value = { type = providers.local.file; inputs = { name = "d-${n}"; contents = n; }; }; })
    (builtins.fromJSON members.e.outputs.stdout));
  rollouts.all = { members = [ "a" "pass" ]; batchSize = 2; };
}
