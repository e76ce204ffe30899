{ lib, config, members, providers, ... }:
{
  members = {
    pass.inputs = { contents = config.sha; mode = lib.mkDefault "0600"; };
    interp = { type = providers.local.file; inputs = { name = "i"; contents = "sha=${config.sha}!"; }; };
    hash = { type = providers.local.file; inputs = { name = "h"; contents = builtins.hashString "sha256" config.sha; }; };
    nested = { type = providers.local.file; inputs = { name = "n"; deep = { list = [ 1 config.sha ]; plain = "x"; }; }; };
    group.members.inner = { type = "local.file"; inputs = { name = "g"; contents = members.pass.outputs.sha256; }; };
  };
  rollouts.all.members = lib.mkAfter [ "pass" ];
}
