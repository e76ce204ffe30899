#!/usr/bin/env bash
# Benchmarks `landscaper apply` of nixos.system members on a fleet of
# stand-in hosts against the same steps done by hand, one host after another
# (BenchmarkFleetApply in landscaper/fleetbench):
#
#   landscaper  `landscaper apply --auto-approve --json` of a deployment with
#               one nixos.system member per host, all given a new system
#               (pre-flight, nix copy, switch-to-configuration test under the
#               dead-man switch, confirmation over a new SSH connection,
#               nix-env --set and switch-to-configuration boot; hosts in
#               parallel, at most --parallelism 10 at once, the default);
#   by hand     for each host in turn, with another new system:
#                 nix copy --no-check-sigs --to ssh-ng://root@127.0.0.1 PATH
#                 ssh ... root@127.0.0.1 nix-env -p /nix/var/nix/profiles/system --set PATH
#                 ssh ... root@127.0.0.1 PATH/bin/switch-to-configuration switch
#               (OpenSSH with -p PORT -i KEY and StrictHostKeyChecking=yes
#               against a known-hosts file holding every host's key).
#
# for 1, 10 and 20 hosts, in one run. The hosts are internal/testhost's
# stand-ins: sshd in its own mount namespace with its own /nix, on a
# loopback port; the systems are stand-in toplevels (a shell script for
# switch-to-configuration), built before anything is timed. The table gives
# the median of BENCH_REPS runs per size (each run deploys new systems) and
# the ratio by hand / landscaper (above 1: landscaper is faster).
#
# Usage: scripts/bench-fleet.sh [--cpu | --cost]   (as root: the stand-in hosts need
# mount namespaces)
#
# --cpu runs BenchmarkFleetApplyCPU instead: where the CPU time of a
# landscaper apply to the largest fleet size goes, the deployer's and the
# hosts' (cgroup v1 cpuacct, exact) and per command (BSD process
# accounting: process counts exact, CPU in truncated 10 ms ticks). Needs
# accton (apt-get install acct).
# --cost runs BenchmarkHostCost instead: what an SSH login, an SSH command
# (session), one more program and starting nix-env or nix-daemon cost a
# stand-in host in CPU time (cgroup v1 cpuacct, exact), in host-ms each.
# Environment: BENCH_REPS (runs per size, default 5), BENCH_FLEET_SIZES
# (default "1 10 20").
# Needs: go, nix, OpenSSH (client and server), util-linux
# (scripts/install-deps.sh installs them).
set -euo pipefail
export LC_ALL=C
export PATH="/usr/local/go/bin:/usr/sbin:/sbin:$PATH"
exec </dev/null

die() { printf 'bench-fleet: error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install $2 (scripts/install-deps.sh installs it)"; }

need go "Go (https://go.dev/doc/install)"
need nix nix-bin
need ssh openssh-client
need sshd openssh-server
need unshare util-linux
need nsenter util-linux
[ "$(id -u)" -eq 0 ] || die "run as root: the stand-in hosts need their own mount namespaces"

cpu_profile=
host_cost=
case "${1:-}" in
--cpu)
	cpu_profile=1
	need accton acct
	;;
--cost) host_cost=1 ;;
'') ;;
*) die "unknown option $1 (--cpu or --cost)" ;;
esac
reps=${BENCH_REPS:-5}
export BENCH_FLEET_SIZES=${BENCH_FLEET_SIZES:-1 10 20}
case "$reps" in '' | *[!0-9]* | 0) die "BENCH_REPS must be a positive number" ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$rev (with uncommitted changes)"; fi

echo "# Fleet apply (nixos.system) vs by hand"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "- landscaper commit $rev, $(go version | cut -d' ' -f3); $(nix --version); $(ssh -V 2>&1)"
echo "- hosts: $BENCH_FLEET_SIZES; median of $reps runs per size; wall-clock seconds"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
echo

if [ -n "$host_cost" ]; then
	go test -count=1 -run '^$' -bench '^BenchmarkHostCost$' -benchtime 200x -timeout 30m ./landscaper/fleetbench/
elif [ -n "$cpu_profile" ]; then
	go test -count=1 -run '^$' -bench '^BenchmarkFleetApplyCPU$' -benchtime "${reps}x" -timeout 120m ./landscaper/fleetbench/
else
	go test -count=1 -run '^$' -bench '^BenchmarkFleetApply$' -benchtime "${reps}x" -timeout 120m ./landscaper/fleetbench/
fi

echo
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
