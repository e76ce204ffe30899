[ ../options.nix ./null.nix ./set.nix { name = "n"; } ]
