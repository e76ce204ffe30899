# What landscaper/vmtest builds: stand-in systems, two of which differ in their
# kernel (the newest and the one before it that scripts/vm-assets.sh
# fetched, or the same kernel under another store path when the archive
# had only one) and command line, and the disko stand-in.
#
#   nix-build landscaper/vmtest/testdata --argstr parts /var/cache/landscaper-vm/parts \
#     --argstr authorizedKey "$(cat ~/.ssh/id_ed25519.pub)" -A systemA
{ parts, authorizedKey ? "", authorizedKeys ? [ ], disk ? "/dev/vda" }:
let
  lib = import ./lib.nix { inherit parts; };
  keys = authorizedKeys ++ (if authorizedKey == "" then [ ] else [ authorizedKey ]);
  versions = lib.kernelVersions;
  second = builtins.elemAt versions (if builtins.length versions > 1 then 1 else 0);
in
{
  systemA = import ./standin-system.nix {
    inherit parts;
    authorizedKeys = keys;
    name = "vm-a";
  };
  # systemA with another name: the same kernel and initrd, so switching
  # between the two needs no reboot.
  systemA2 = import ./standin-system.nix {
    inherit parts;
    authorizedKeys = keys;
    name = "vm-a2";
  };
  systemB = import ./standin-system.nix {
    inherit parts;
    authorizedKeys = keys;
    name = "vm-b";
    kernelVersion = second;
    # Another store path for the kernel even when it is the same version.
    kernelName = "linux-${second}-b";
    extraCmdline = "landscaper.variant=b";
  };
  disko = import ./disko-standin.nix { inherit parts disk; };
}
