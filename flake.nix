{
  description = "Landscaper: a NixOS-native deployment engine, its providers and its boot server";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      version = "0.1.0-" + (self.shortRev or self.dirtyShortRev or "dirty");

      # The hash of the Go dependencies: the NAR hash of what `go mod vendor`
      # makes of go.mod and go.sum. The repository has no vendor directory,
      # so buildGoModule fetches them in a fixed-output derivation checked
      # against this hash, which must change whenever go.mod or go.sum
      # does. `go test ./landscaper/packagingtest -run VendorHash` computes
      # it without nixpkgs and prints the new value; or set lib.fakeHash,
      # run `nix build .#landscaper` and copy the "got: sha256-..." of the
      # hash mismatch here (README.md, "Installing on NixOS").
      vendorHash = "sha256-Odw+CKuMMtA2JmgvqCpBjMnbZ2AGzdfTVgBlRJLCgdM=";

      # The providers: every providers/<name>/cmd/landscaper-provider-<name>,
      # as `make build` finds them.
      providers = builtins.filter
        (name: builtins.pathExists (./providers + "/${name}/cmd/landscaper-provider-${name}"))
        (builtins.attrNames (builtins.readDir ./providers));
      providerPackage = name: "providers/${name}/cmd/landscaper-provider-${name}";

      # go.mod's go line is the oldest Go that builds the module. nixpkgs
      # builds with GOTOOLCHAIN=local, so an older Go would fail with
      # "go.mod requires go >= ...": pick one that is new enough, or say so.
      goMin = builtins.head (builtins.match ".*\ngo ([0-9.]+)\n.*" (builtins.readFile ./go.mod));
      newEnough = go: builtins.compareVersions go.version goMin >= 0;
      pickGo = pkgs:
        if newEnough pkgs.go then pkgs.go
        else if pkgs ? go_1_26 && newEnough pkgs.go_1_26 then pkgs.go_1_26
        else throw "landscaper: go.mod needs Go ${goMin} or newer, but this nixpkgs has Go ${pkgs.go.version}; use a newer nixpkgs input";

      mkPackages = pkgs:
        let
          buildGoModule = pkgs.buildGoModule.override { go = pickGo pkgs; };
          build = { pname, subPackages, description, mainProgram }:
            buildGoModule {
              inherit pname version vendorHash subPackages;
              # The repository without what the Go build never reads, so
              # that editing the docs, the scripts or the NixOS module does
              # not rebuild the binaries.
              src = lib.fileset.toSource {
                root = ./.;
                fileset = lib.fileset.difference ./. (lib.fileset.unions (map lib.fileset.maybeMissing [
                  ./.ci
                  ./docs
                  ./examples
                  ./scripts
                  ./BENCHMARKS.md
                  ./README.md
                  ./flake.nix
                  ./flake.lock
                  ./landscaper/nixos-module.nix
                  ./landscaper/agent-module.nix
                ]));
              };
              ldflags = [ "-s" "-w" "-X github.com/landscaper-nix/landscaper/landscaper/cli.Version=${version}" ];
              # The tests need a working nix, sshd, QEMU and the network
              # boot fixtures (see `make test`); they do not run in the
              # build sandbox.
              doCheck = false;
              meta = {
                inherit description mainProgram;
                homepage = "https://github.com/landscaper-nix/landscaper";
                platforms = lib.platforms.linux;
              };
            };
          # landscaper finds its providers next to its own binary (after
          # resolving symlinks) and then on PATH, so one package with every
          # binary in one bin directory is complete: `nix run`,
          # environment.systemPackages and `nix profile install` all work.
          landscaper = build {
            pname = "landscaper";
            subPackages = [ "landscaper/cmd/landscaper" ] ++ map providerPackage providers;
            description = "Landscaper deployment engine, boot server and built-in providers";
            mainProgram = "landscaper";
          };
          # Each provider on its own too, for a deployment that declares
          # providers.<name>.executable, or for a PATH of chosen providers.
          providerPackages = builtins.listToAttrs (map
            (name: {
              name = "landscaper-provider-${name}";
              value = build {
                pname = "landscaper-provider-${name}";
                subPackages = [ (providerPackage name) ];
                description = "Landscaper provider ${name}";
                mainProgram = "landscaper-provider-${name}";
              };
            })
            providers);
        in
        providerPackages // { inherit landscaper; default = landscaper; };
    in
    {
      packages = forAllSystems (system: pkgs: mkPackages pkgs);

      apps = forAllSystems (system: pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${system}.landscaper}/bin/landscaper";
          meta.description = "Run the landscaper command";
        };
      });

      # The module in landscaper/nixos-module.nix, with this flake's package
      # as the default of services.landscaper.package.
      nixosModules.default = { lib, pkgs, ... }: {
        imports = [ ./landscaper/nixos-module.nix ];
        services.landscaper.package =
          lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.landscaper;
      };

      # The pull agent for managed hosts, landscaper/agent-module.nix, with
      # this flake's package as services.landscaper-agent.package.
      nixosModules.agent = { lib, pkgs, ... }: {
        imports = [ ./landscaper/agent-module.nix ];
        services.landscaper-agent.package =
          lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.landscaper;
      };
    };
}
