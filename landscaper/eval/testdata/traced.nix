# Members for TestTrace: two that share a value computed from an output
# (first and second), one that uses none, one that throws after forcing an
# output, and names with a space; parses fails in a way tryEval cannot
# catch while its output is a stand-in.
{ members, providers, ... }:
let
  shared = builtins.hashString "sha256" members.src.outputs.sha256;
in
{
  members.src = { type = providers.local.file; inputs = { name = "src"; contents = "x"; }; };
  members."the other" = { type = providers.local.file; inputs = { name = "other"; contents = "y"; }; };
  members.first = { type = providers.local.file; inputs = { name = "first"; contents = shared; }; };
  members.second = { type = providers.local.file; inputs = { name = "second"; contents = shared + members."the other".outputs.sha256; }; };
  members.none = { type = providers.local.file; inputs = { name = "none"; contents = "plain"; }; };
  members.throws = { type = providers.local.file; inputs = { name = "throws"; contents = if members.src.outputs.sha256 != "" then throw "no" else ""; }; };
  members.parses = { type = providers.local.file; inputs = { name = "parses"; contents = (builtins.fromJSON members.src.outputs.sha256).x; }; };
  members.group.members."in side" = { type = providers.local.file; inputs = { name = "inner"; contents = builtins.hashString "sha256" members."the other".outputs.sha256; }; };
}
