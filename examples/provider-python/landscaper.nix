# A deployment that uses the Python provider of this directory,
# landscaper-provider-pysecret (Debian: apt install python3-grpcio
# python3-cryptography python3-protobuf), beside the built-in local
# provider. Run `landscaper plan`, `landscaper apply` and
# `landscaper destroy` here; files go under ./out.
{ members, providers, ... }:
{
  # toString: the script stays where it is (a bare path would be copied
  # into the Nix store without its gen/ directory).
  providers.pysecret.executable = toString ./landscaper-provider-pysecret;

  members.token = {
    type = providers.pysecret.token;
    inputs = { path = "out/token-id"; length = 24; };
  };

  # The token's secret is a sensitive output: it reaches this member's
  # inputs without passing through Nix, and is shown as (sensitive).
  members.secretCopy = {
    type = providers.local.file;
    inputs = {
      name = "out/secret-copy";
      contents = members.token.outputs.secret;
      mode = "0600";
    };
  };

  # The public id is an ordinary output.
  members.idCopy = {
    type = providers.local.file;
    inputs = { name = "out/id-copy"; contents = "id ${members.token.outputs.id}\n"; };
  };
}
