{ members, providers, ... }: {
  members.a = { type = providers.local.file; inputs = { name = "a"; contents = "hello"; }; };
  members.pass = { type = providers.local.file; inputs = { name = "p"; contents = members.a.outputs.sha256; }; };
  members.interp = { type = providers.local.file; inputs = { name = "i"; contents = "sha=${members.a.outputs.sha256}!"; }; };
  members.hash = { type = providers.local.file; inputs = { name = "h"; contents = builtins.hashString "sha256" members.a.outputs.sha256; }; };
  members.slice = { type = providers.local.file; inputs = { name = "s"; contents = builtins.substring 0 8 members.a.outputs.sha256; }; };
  members.len = { type = providers.local.file; inputs = { name = "l"; contents = toString (builtins.stringLength members.a.outputs.sha256); }; };
  members.json = { type = providers.local.file; inputs = { name = "j"; contents = builtins.toJSON { x = members.a.outputs.sha256; }; }; };
  members.group = { members.inner = { type = "local.file"; inputs = { name = "g"; contents = members.pass.outputs.sha256; }; }; };
}
