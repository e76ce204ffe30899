#!/usr/bin/env bash
# Benchmarks `landscaper serve` (the network boot server) against tftpd-hpa,
# on the loopback interface, with curl as the one client of both servers and
# of both protocols:
#
#   1. one 200 MB file (random data), one client: over TFTP with blksize
#      1468 and 65464, from landscaper serve and from tftpd-hpa, and over
#      HTTP from landscaper serve;
#   2. 50 clients fetching one 20 MB initrd at once: over HTTP and over TFTP
#      (blksize 1468) from landscaper serve, and over TFTP from tftpd-hpa.
#
# TFTP is lock-step: one round trip per block. On loopback a round trip is
# two wake-ups, and what they cost depends on where the scheduler puts the
# client and the server: on different CPUs each wake-up is a cross-CPU
# wake-up (expensive in a VM), on one CPU a plain context switch. Left to
# the scheduler, the same transfer takes either time from run to run. So
# the single-client runs are made twice, pinned with taskset: client and
# server on different CPUs (like a client on another machine: latency
# bound), and on the same CPU (what the servers cost per block). The
# concurrent runs are not pinned.
#
# landscaper serve only serves files of boot entries, so the script makes
# two entries with `landscaper provider call pxe-nbp create` (their initrd is
# the big file and the 20 MB file) and fetches v/<mac>/<version>/initrd/0.
# tftpd-hpa runs in the foreground (in.tftpd -L -s DIR -a 127.0.0.1:PORT)
# with its own directory holding the same two files.
#
# Each configuration gets a warm-up run, which also checks the sha256 of
# what arrived. Then each single-client configuration gets BENCH_REPS timed
# runs per placement (curl's time_total, output to /dev/null, size
# checked), and each concurrent one BENCH_CONCURRENT_REPS runs, timed from
# starting the first client to the last one's exit (every client's size
# checked); the table shows the medians and every run. The servers
# alternate within each repetition.
#
# Usage: scripts/bench-pxe.sh   (as root: tftpd-hpa's -s chroots)
# Environment: BENCH_REPS (default 5), BENCH_CONCURRENT_REPS (3), BENCH_DIR
# (where the temporary directory goes, default /tmp), BENCH_BIG_MB (200),
# BENCH_INITRD_MB (20), BENCH_CLIENTS (50). MB here is 10^6 bytes.
# Needs: go, curl, tftpd-hpa, taskset (scripts/install-deps.sh installs
# them; taskset is in util-linux).
set -euo pipefail
export LC_ALL=C
export PATH="/usr/local/go/bin:/usr/sbin:/sbin:$PATH"

die() { printf 'bench-pxe: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench-pxe: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install $2 (scripts/install-deps.sh installs it)"; }

need curl curl
need in.tftpd tftpd-hpa
need go "Go (https://go.dev/doc/install)"
need sha256sum coreutils
need taskset util-linux
[ "$(id -u)" -eq 0 ] || die "run as root: tftpd-hpa's -s (chroot) needs it"

reps=${BENCH_REPS:-5}
creps=${BENCH_CONCURRENT_REPS:-3}
big_mb=${BENCH_BIG_MB:-200}
initrd_mb=${BENCH_INITRD_MB:-20}
clients=${BENCH_CLIENTS:-50}
big_size=$((big_mb * 1000000))
initrd_size=$((initrd_mb * 1000000))
ncpu=$(nproc)
all_cpus=0-$((ncpu - 1))

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${BENCH_DIR:-/tmp}/landscaper-bench-pxe.XXXXXX")
# tftpd-hpa drops to "nobody" after its chroot: its directory and files
# must be readable by others.
chmod 0755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

say "building landscaper and the pxe-nbp provider"
(cd "$repo" && go build -o "$work/bin/" ./landscaper/cmd/landscaper ./providers/pxe-nbp/cmd/landscaper-provider-pxe-nbp)
landscaper=$work/bin/landscaper

say "making a ${big_mb} MB and a ${initrd_mb} MB file of random data"
mkdir -m 0755 "$work/files"
head -c "$big_size" /dev/urandom >"$work/files/big.bin"
head -c "$initrd_size" /dev/urandom >"$work/files/initrd.bin"
chmod 0644 "$work/files/big.bin" "$work/files/initrd.bin"
big_sha=$(sha256sum <"$work/files/big.bin" | cut -d' ' -f1)
initrd_sha=$(sha256sum <"$work/files/initrd.bin" | cut -d' ' -f1)

# entry MAC FILE: an entry whose kernel and initrd are FILE; prints the path
# of its initrd on the server.
entry() {
	local mac=$1 file=$2 out
	out=$(cd "$work" && NIX_CONFIG="substituters =" "$landscaper" provider call pxe-nbp create --type entry \
		--inputs "{\"mac\":\"$mac\",\"kernel\":\"$file\",\"initrd\":[\"$file\"],\"bootDir\":\"$work/boot\"}" 2>&1) ||
		die "landscaper provider call pxe-nbp create: $out"
	local hy=${mac//:/-}
	local version
	version=$(basename "$(readlink "$work/boot/entries/$hy")") || die "no entry for $mac after create: $out"
	printf 'v/%s/%s/initrd/0' "$hy" "$version"
}
big_path=$(entry 52:54:00:be:00:01 "$work/files/big.bin")
initrd_path=$(entry 52:54:00:be:00:02 "$work/files/initrd.bin")

say "starting landscaper serve"
mkdir -m 0755 "$work/no-ipxe"
"$landscaper" serve --boot-dir "$work/boot" --tftp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --ipxe-dir "$work/no-ipxe" \
	2>"$work/serve.log" &
l_pid=$!
pids+=("$l_pid")
for _ in $(seq 100); do
	grep -q 'msg="boot server listening"' "$work/serve.log" && break
	sleep 0.1
done
listening=$(grep 'msg="boot server listening"' "$work/serve.log") || die "landscaper serve did not start: $(cat "$work/serve.log")"
l_tftp=$(sed -n 's/.* tftp=\([^ ]*\).*/\1/p' <<<"$listening")
l_http=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$listening")
[ -n "$l_tftp" ] && [ -n "$l_http" ] || die "cannot read the addresses from: $listening"

say "starting tftpd-hpa"
h_tftp=""
h_pid=""
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	in.tftpd -L -s "$work/files" -a "127.0.0.1:$port" 2>>"$work/tftpd.log" &
	pid=$!
	sleep 0.3
	if kill -0 "$pid" 2>/dev/null &&
		curl -sS -o /dev/null --max-time 10 "tftp://127.0.0.1:$port/initrd.bin"; then
		pids+=("$pid")
		h_pid=$pid
		h_tftp=127.0.0.1:$port
		break
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
[ -n "$h_tftp" ] || die "tftpd-hpa did not start: $(cat "$work/tftpd.log" 2>/dev/null)"

# place SERVER_CPUS CLIENT_CPUS: pins both servers (every thread; the
# processes they start inherit it) and the clients that follow.
client_cpus=$all_cpus
place() {
	taskset -a -p -c "$1" "$l_pid" >/dev/null
	taskset -a -p -c "$1" "$h_pid" >/dev/null
	client_cpus=$2
}

# fetch URL SIZE [BLKSIZE]: one timed transfer to /dev/null; prints seconds.
fetch() {
	local url=$1 size=$2 opts=() out
	[ $# -ge 3 ] && opts=(--tftp-blksize "$3")
	out=$(taskset -c "$client_cpus" curl -sS --max-time 900 "${opts[@]}" -o /dev/null -w '%{time_total} %{size_download}' "$url") ||
		die "curl ${opts[*]} $url failed"
	[ "${out#* }" = "$size" ] || die "curl ${opts[*]} $url got ${out#* } bytes, want $size"
	printf '%s\n' "${out%% *}"
}

# verify URL SHA [BLKSIZE]: an untimed transfer whose sha256 must be SHA.
verify() {
	local url=$1 sha=$2 opts=() got
	[ $# -ge 3 ] && opts=(--tftp-blksize "$3")
	got=$(curl -sS --max-time 900 "${opts[@]}" "$url" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$sha" ] || die "curl ${opts[*]} $url: sha256 $got, want $sha"
}

# concurrent URL SIZE [BLKSIZE]: $clients transfers at once; prints the
# seconds from the first start to the last exit.
concurrent() {
	local url=$1 size=$2 opts=() i cpids=() start end failed=0
	[ $# -ge 3 ] && opts=(--tftp-blksize "$3")
	rm -rf "$work/c"
	mkdir "$work/c"
	start=$(date +%s.%N)
	for i in $(seq "$clients"); do
		curl -sS --max-time 900 "${opts[@]}" -o /dev/null -w '%{size_download}' "$url" >"$work/c/$i" 2>"$work/c/$i.err" &
		cpids+=($!)
	done
	for i in "${!cpids[@]}"; do
		wait "${cpids[$i]}" || failed=$((failed + 1))
	done
	end=$(date +%s.%N)
	for i in $(seq "$clients"); do
		[ "$(cat "$work/c/$i")" = "$size" ] || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ] || die "$failed of $clients concurrent transfers of $url ${opts[*]} failed: $(cat "$work"/c/*.err | sort | uniq -c | head)"
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1000000 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

l_big_tftp=tftp://$l_tftp/$big_path
h_big_tftp=tftp://$h_tftp/big.bin
l_big_http=http://$l_http/$big_path
l_initrd_tftp=tftp://$l_tftp/$initrd_path
h_initrd_tftp=tftp://$h_tftp/initrd.bin
l_initrd_http=http://$l_http/$initrd_path

say "warm-up runs, checking the sha256 of what arrives"
verify "$l_big_tftp" "$big_sha" 1468
verify "$h_big_tftp" "$big_sha" 1468
verify "$l_big_tftp" "$big_sha" 65464
verify "$h_big_tftp" "$big_sha" 65464
verify "$l_big_http" "$big_sha"
verify "$l_initrd_tftp" "$initrd_sha" 1468
verify "$h_initrd_tftp" "$initrd_sha" 1468
verify "$l_initrd_http" "$initrd_sha"

# Placements of the single-client runs: "split" (servers on CPU 0, client
# on CPU 1) and "same" (all on CPU 0). One CPU only: "same" alone.
placements=(same)
[ "$ncpu" -ge 2 ] && placements=(split same)
declare -A times=()
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for p in "${placements[@]}"; do
	case $p in
	split) place 0 1 ;;
	same) place 0 0 ;;
	esac
	for r in $(seq "$reps"); do
		say "placement $p, repetition $r of $reps: ${big_mb} MB, one client"
		times[$p.l1468]+="$(fetch "$l_big_tftp" "$big_size" 1468) "
		times[$p.h1468]+="$(fetch "$h_big_tftp" "$big_size" 1468) "
		times[$p.l65464]+="$(fetch "$l_big_tftp" "$big_size" 65464) "
		times[$p.h65464]+="$(fetch "$h_big_tftp" "$big_size" 65464) "
		times[$p.lhttp]+="$(fetch "$l_big_http" "$big_size") "
	done
done
place "$all_cpus" "$all_cpus"
for r in $(seq "$creps"); do
	say "repetition $r of $creps: $clients clients × ${initrd_mb} MB at once"
	times[chttp]+="$(concurrent "$l_initrd_http" "$initrd_size") "
	times[cl1468]+="$(concurrent "$l_initrd_tftp" "$initrd_size" 1468) "
	times[ch1468]+="$(concurrent "$h_initrd_tftp" "$initrd_size" 1468) "
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A m=() rate=()
for k in "${!times[@]}"; do
	m[$k]=$(tr ' ' '\n' <<<"${times[$k]}" | grep . | median)
	case $k in
	c*) rate[$k]=$(mbps "$((initrd_size * clients))" "${m[$k]}") ;;
	*) rate[$k]=$(mbps "$big_size" "${m[$k]}") ;;
	esac
done
# runs KEY: every run's time, for the table.
runs() { tr ' ' '\n' <<<"${times[$1]}" | grep . | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 }'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "yes" : "**no**") }'; }
# ratiorow LABEL A B TARGET: a row of the ratio table (of MB/s, A / B).
ratiorow() {
	local r
	r=$(ratio "${rate[$2]}" "${rate[$3]}")
	printf '| %s | %s | ≥ %s | %s |\n' "$1" "$r" "$4" "$(met "$r" "$4")"
}
declare -A where=([split]="client and server on different CPUs" [same]="client and server on one CPU")

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ] && dirty=" (with uncommitted changes)"

cat <<EOF

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $ncpu CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)
- landscaper commit $commit$dirty, $(go version | cut -d' ' -f3); $(curl --version | head -1 | cut -d' ' -f1-2); tftpd-hpa $(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null || echo '?')
- load average at start: $load_start; at the end: $load_end
- loopback (127.0.0.1) only; client: curl for every row; median of $reps runs (one client) or $creps runs ($clients clients), after a warm-up run that checked the sha256
- MB = 10^6 bytes; one file: ${big_mb} MB; concurrent: $clients clients × ${initrd_mb} MB at once ($((clients * initrd_mb)) MB in all)

| transfer | placement | server | protocol, options | median s | MB/s | runs (s) |
|---|---|---|---|---:|---:|---|
EOF
for p in "${placements[@]}"; do
	w=${where[$p]}
	cat <<EOF
| ${big_mb} MB, one client | $w | landscaper serve | TFTP, blksize 1468 | ${m[$p.l1468]} | ${rate[$p.l1468]} | $(runs "$p.l1468") |
| ${big_mb} MB, one client | $w | tftpd-hpa | TFTP, blksize 1468 | ${m[$p.h1468]} | ${rate[$p.h1468]} | $(runs "$p.h1468") |
| ${big_mb} MB, one client | $w | landscaper serve | TFTP, blksize 65464 | ${m[$p.l65464]} | ${rate[$p.l65464]} | $(runs "$p.l65464") |
| ${big_mb} MB, one client | $w | tftpd-hpa | TFTP, blksize 65464 | ${m[$p.h65464]} | ${rate[$p.h65464]} | $(runs "$p.h65464") |
| ${big_mb} MB, one client | $w | landscaper serve | HTTP | ${m[$p.lhttp]} | ${rate[$p.lhttp]} | $(runs "$p.lhttp") |
EOF
done
cat <<EOF
| $clients × ${initrd_mb} MB at once | not pinned | landscaper serve | HTTP | ${m[chttp]} | ${rate[chttp]} (aggregate) | $(runs chttp) |
| $clients × ${initrd_mb} MB at once | not pinned | landscaper serve | TFTP, blksize 1468 | ${m[cl1468]} | ${rate[cl1468]} (aggregate) | $(runs cl1468) |
| $clients × ${initrd_mb} MB at once | not pinned | tftpd-hpa | TFTP, blksize 1468 | ${m[ch1468]} | ${rate[ch1468]} (aggregate) | $(runs ch1468) |

| ratio (of MB/s) | value | target | met |
|---|---:|---:|---|
EOF
for p in "${placements[@]}"; do
	w=${where[$p]}
	ratiorow "landscaper / tftpd-hpa, TFTP blksize 1468, one client, $w" "$p.l1468" "$p.h1468" 1
	ratiorow "landscaper / tftpd-hpa, TFTP blksize 65464, one client, $w" "$p.l65464" "$p.h65464" 1
done
ratiorow "landscaper / tftpd-hpa, TFTP blksize 1468, $clients clients" cl1468 ch1468 1
for p in "${placements[@]}"; do
	w=${where[$p]}
	ratiorow "HTTP / TFTP blksize 1468 (landscaper), one client, $w" "$p.lhttp" "$p.l1468" 10
	ratiorow "HTTP / TFTP blksize 65464 (landscaper), one client, $w" "$p.lhttp" "$p.l65464" 10
done
ratiorow "HTTP / TFTP blksize 1468 (landscaper), $clients clients" chttp cl1468 10

# The server must have logged every transfer as a success.
bad=$(grep 'msg="boot request"' "$work/serve.log" | grep -vc 'outcome=ok' || true)
[ "$bad" = 0 ] || say "warning: landscaper serve logged $bad requests that did not end ok: $(grep 'msg="boot request"' "$work/serve.log" | grep -v 'outcome=ok' | head -3)"
