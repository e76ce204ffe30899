[ ../options.nix ./a.nix ./b.nix ]
