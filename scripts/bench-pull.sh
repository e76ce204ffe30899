#!/usr/bin/env bash
# Benchmarks `landscaper serve --pull-dir` under many pull agents
# (BenchmarkPullLoad in landscaper/pull/pullload): for each number of
# agents, that many simulated hosts (each its own ed25519 host key and its
# own connection, the real pull client, every request signed) against one
# server process on 127.0.0.1:
#
#   1. each agent makes 5 polls the server answers at once (wait= with a
#      known= other than its generation): their latency and polls/s;
#   2. all long-poll (wait=60, known=their generation) and wait
#      BENCH_PULL_HOLD (10s): the server's CPU time while they wait;
#   3. a new generation is published for every host (pulldir, 8 at once,
#      as nixos.pull writes it): per agent, the time from its host's
#      publish to its having the generation, and until all have it;
#   4. the agents stop.
#
# Throughout, the server's goroutines (go_goroutines at /metrics, every
# 200 ms), its peak resident memory (VmHWM of /proc/PID/status), its CPU
# time (/proc/PID/stat) and the nonce files it wrote. The agents run in
# the benchmark's process, on the same CPUs as the server.
#
# Usage: scripts/bench-pull.sh
# Environment: BENCH_PULL_AGENTS (default "100 1000"), BENCH_PULL_HOLD
# (default 10s), BENCH_REPS (runs per size, default 1), BENCH_DIR (where
# the pull directory goes; default: the temporary directory),
# BENCH_LANDSCAPER (another landscaper binary to measure as the server;
# default: built from this tree).
# Needs: go, nix (to build two stand-in systems).
set -euo pipefail
export LC_ALL=C
export PATH="/usr/local/go/bin:$PATH"
exec </dev/null

die() { printf 'bench-pull: error: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go not found (https://go.dev/doc/install)"
command -v nix-build >/dev/null 2>&1 || die "nix-build not found: apt-get install nix-bin (scripts/install-deps.sh installs it)"
reps=${BENCH_REPS:-1}
case "$reps" in '' | *[!0-9]* | 0) die "BENCH_REPS must be a positive number" ;; esac
export BENCH_PULL_AGENTS=${BENCH_PULL_AGENTS:-100 1000}
export BENCH_PULL_HOLD=${BENCH_PULL_HOLD:-10s}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$rev (with uncommitted changes)"; fi

echo "# Pull mode: many agents against one landscaper serve"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "- landscaper commit $rev, $(go version | cut -d' ' -f3); $(nix --version)"
echo "- agents: $BENCH_PULL_AGENTS; $reps run(s) each; hold $BENCH_PULL_HOLD"
echo "- pull directory under: ${BENCH_DIR:-${TMPDIR:-/tmp}} ($(df -T "${BENCH_DIR:-${TMPDIR:-/tmp}}" | awk 'NR == 2 { print $2 }'))"
if [ -n "${BENCH_LANDSCAPER:-}" ]; then echo "- server binary: $BENCH_LANDSCAPER"; fi
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"

go test -count=1 -run '^$' -bench '^BenchmarkPullLoad$' -benchtime "${reps}x" -timeout 60m ./landscaper/pull/pullload/

echo
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
