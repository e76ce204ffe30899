#!/usr/bin/env bash
# Runs a landscaper command and prints the peak of the resident memory of
# the engine and its provider plugins together (their RSS summed, sampled
# every 10 ms from /proc), and the peaks of each and of nix-instantiate
# alone. Usage: scripts/peakmem.sh landscaper plan [ARGS...]
# The command's own output is discarded; its exit status is kept.
set -uo pipefail

[ $# -gt 0 ] || {
	echo "usage: $0 COMMAND [ARGS...]" >&2
	exit 2
}

"$@" >/dev/null 2>&1 &
pid=$!

rss() { # PID... -> summed VmRSS in KiB
	local sum=0 p v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

both=0 engine=0 providers=0 nix=0
while kill -0 "$pid" 2>/dev/null; do
	e=$(rss "$pid")
	# shellcheck disable=SC2046
	p=$(rss $(pgrep -P "$pid" -f landscaper-provider-))
	# shellcheck disable=SC2046
	n=$(rss $(pgrep -P "$pid" -f nix-instantiate))
	((e + p > both)) && both=$((e + p))
	((e > engine)) && engine=$e
	((p > providers)) && providers=$p
	((n > nix)) && nix=$n
	sleep 0.01
done
wait "$pid"
status=$?
printf 'peak RSS: engine and providers together %d MiB (engine %d MiB, providers %d MiB; nix-instantiate %d MiB)\n' \
	$((both / 1024)) $((engine / 1024)) $((providers / 1024)) $((nix / 1024))
exit "$status"
