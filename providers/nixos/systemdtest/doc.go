// Package systemdtest runs the nixos provider's binary against targets on
// which systemd is PID 1 (internal/systemdhost: a Debian root with systemd,
// OpenSSH and Nix under systemd-nspawn --boot): the paths the stand-in
// hosts of providers/nixos cannot reach, because they run no systemd. The
// supervisor as a transient unit, a unit that fails during the activation,
// the failed-units pre-flight, sshd's reload after a host-key rotation,
// the dead-man switch when the deployer's traffic is cut, and a provider
// killed in the middle of an activation. The tests need root and the
// packages of scripts/install-deps.sh; the container's root file system is
// made and cached by scripts/systemd-rootfs.sh.
package systemdtest
