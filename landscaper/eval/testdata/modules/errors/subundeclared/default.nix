[ ../options.nix ./host.nix { name = "n"; } ]
