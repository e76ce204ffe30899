[ ../options.nix ./typo.nix ]
