# The Landscaper quickstart: three local files and one local command.
# Run `landscaper plan`, `landscaper apply` and `landscaper destroy` in this
# directory; the files are written under ./out (paths are relative to this
# file's directory, wherever landscaper runs).
{ members, providers, ... }:
{
  # A file with fixed contents. Its output `sha256` is the hash of its
  # contents.
  members.greeting = {
    type = providers.local.file;
    inputs = {
      name = "out/greeting.txt";
      contents = "Hello from Landscaper!\n";
    };
  };

  # A command. What it prints on stdout becomes its output `stdout`. It
  # reads greeting.txt, so it refers to the greeting's sha256 (through its
  # environment): that reference makes it run after the greeting is written,
  # and run again whenever the greeting changes.
  members.wordCount = {
    type = providers.local.exec;
    inputs = {
      executable = "sh";
      args = [ "-c" "wc -w < out/greeting.txt | tr -d ' \\n'" ];
      env.GREETING_SHA256 = members.greeting.outputs.sha256;
      timeout = 10;
    };
  };

  # A file that quotes the other members' outputs: the greeting's sha256
  # (passed through and cut with builtins.substring) and the command's stdout.
  members.report = {
    type = providers.local.file;
    inputs = {
      name = "out/report.txt";
      mode = "0600";
      contents = ''
        greeting.txt sha256: ${members.greeting.outputs.sha256}
        short id:            ${builtins.substring 0 12 members.greeting.outputs.sha256}
        words in greeting:   ${members.wordCount.outputs.stdout}
      '';
    };
  };

  # Members can be grouped; this one is `archive.manifest`, and others refer
  # to it as members.archive.members.manifest.
  members.archive.members.manifest = {
    type = providers.local.file;
    inputs = {
      name = "out/archive/MANIFEST";
      contents = "report.txt ${members.report.outputs.sha256}\n";
    };
  };
}
