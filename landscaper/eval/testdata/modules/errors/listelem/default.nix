[ ../options.nix ./list.nix { name = "n"; } ]
