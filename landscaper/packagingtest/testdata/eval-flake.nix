# Evaluates flake.nix's outputs with a stub nixpkgs: lib is the stub lib,
# buildGoModule returns its arguments (plus the Go it was given) as a fake
# derivation.
#
# root: the repository; goVersion: the version of the stub's pkgs.go;
# go126Version: if not empty, the stub also has pkgs.go_1_26 of that
# version.
{ root, goVersion, go126Version ? "" }:
let
  lib = import ./stub-lib.nix;
  flake = import (root + "/flake.nix");

  mkPkgs = system: {
    go = { version = goVersion; };
    buildGoModule.override = { go }: args: args // {
      type = "derivation";
      name = "${args.pname}-${args.version}";
      outPath = "/nix/store/00000000000000000000000000000000-${args.pname}-${args.version}-${system}";
      goVersion = go.version;
    };
    stdenv.hostPlatform.system = system;
  } // (if go126Version == "" then { } else { go_1_26 = { version = go126Version; }; });

  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" "riscv64-linux" ] mkPkgs;
  };

  self = flake.outputs { inherit self nixpkgs; } // {
    shortRev = "0123abc";
    outPath = root;
  };

  module = self.nixosModules.default { inherit lib; pkgs = mkPkgs "aarch64-linux"; };
  agentModule = self.nixosModules.agent { inherit lib; pkgs = mkPkgs "aarch64-linux"; };
in
{
  inputs = builtins.attrNames flake.inputs;
  nixpkgsUrl = flake.inputs.nixpkgs.url;
  packages = builtins.mapAttrs
    (system: builtins.mapAttrs (name: p: {
      inherit (p) pname version subPackages ldflags vendorHash doCheck goVersion;
      path = toString p;
      mainProgram = p.meta.mainProgram;
      platforms = p.meta.platforms;
      src = toString p.src.outPath;
      excluded = map toString p.src.fileset.excluded;
    }))
    self.packages;
  apps = builtins.mapAttrs (system: a: { inherit (a.default) type program; }) self.apps;
  module = {
    imports = map toString module.imports;
    package = toString module.services.landscaper.package.content;
    packagePriority = module.services.landscaper.package.priority;
  };
  agentModule = {
    imports = map toString agentModule.imports;
    package = toString agentModule.services.landscaper-agent.package.content;
    packagePriority = agentModule.services.landscaper-agent.package.priority;
  };
}
