[ ../options.nix ./cond.nix { name = "n"; } ]
