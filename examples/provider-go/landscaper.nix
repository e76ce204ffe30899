# A deployment that uses the kv provider of this directory beside the
# built-in ones. Build the provider first (README.md):
#
#   go build -o bin/ ./cmd/landscaper-provider-kv
#
# then run `landscaper plan`, `landscaper apply` and `landscaper destroy`
# here. The store is ./out/store (relative to this directory).
{ members, providers, ... }:
{
  # The provider's binary. toString keeps the path a path on this machine
  # (a bare ./bin/... would be copied into the Nix store). A flake gives
  # its package instead, which is built before the provider starts:
  #   providers.kv.executable = "${kv.packages.${system}.default}/bin/landscaper-provider-kv";
  providers.kv.executable = toString ./bin/landscaper-provider-kv;

  members.greeting = {
    type = providers.kv.entry;
    inputs = {
      store = "out/store";
      key = "greeting";
      value = "Hello from a provider written outside Landscaper\n";
      # A sensitive input: shown as (sensitive), never logged.
      secret = "not-a-real-password";
    };
  };

  # Another member reads the entry's outputs: it is applied after it.
  members.receipt = {
    type = providers.local.file;
    inputs = {
      name = "out/receipt.txt";
      contents = "greeting ${members.greeting.outputs.sha256} revision ${toString members.greeting.outputs.revision}\n";
    };
  };
}
