[ ../options.nix ./mixed.nix { name = "n"; } ]
