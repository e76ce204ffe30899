# function.nix as modules: an option carries an output, members are
# defined in several files and merge.
{ lib, config, members, providers, ... }:
{
  imports = [ ./files.nix ./dynamic.nix ];
  options.sha = lib.mkOption { type = lib.types.str; description = "a's hash"; };
  config = {
    sha = members.a.outputs.sha256;
    members.a = { type = providers.local.file; inputs = { name = "a"; contents = "hello"; }; };
    members.pass = { type = providers.local.file; inputs.name = "p"; };
    rollouts.all = { members = [ "a" ]; batchSize = 2; };
  };
}
