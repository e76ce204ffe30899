[ ../options.nix ./one.nix ./two.nix { name = "n"; } ]
