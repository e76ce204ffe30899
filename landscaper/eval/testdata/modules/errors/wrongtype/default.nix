[ ../options.nix ./value.nix { name = "n"; } ]
