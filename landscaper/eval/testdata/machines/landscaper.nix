# Two machines of landscaper.modules.machines: web runs its system on the
# installer (no disk script), db is installed onto its disks. The rollout
# the module declares takes both at once (batchSize, set here).
{ landscaper, ... }:
{
  imports = [ landscaper.modules.machines ];
  bootServer.bootDir = "/srv/boot";
  rollouts.machines.batchSize = 2;
  machines.web = {
    mac = "52:54:00:00:00:01";
    address = "192.0.2.1";
    installer = { kernel = "/boot/bzImage"; initrd = [ "/boot/initrd" ]; cmdline = "console=ttyS0"; };
    system = "/nix/store/00000000000000000000000000000000-web";
  };
  machines.db = {
    mac = "52-54-00-00-00-02";
    address = "192.0.2.2";
    port = 2222;
    installer.kernel = "/boot/bzImage";
    diskoScript = "/nix/store/00000000000000000000000000000000-disko";
    system = "/nix/store/00000000000000000000000000000000-db";
    healthChecks = [ { command = "true"; } ];
    reboot = "ifNeeded";
  };
}
