# Imports: files importing files, one file imported twice (it counts once),
# anonymous modules in imports, and _file.
[
  ./main.nix
  ./shared.nix
]
