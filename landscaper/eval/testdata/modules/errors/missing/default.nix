[ ../options.nix { count = 2; } ]
