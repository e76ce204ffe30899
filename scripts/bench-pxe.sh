#!/usr/bin/env bash
# Benchmarks `landscaper serve` (the network boot server) against tftpd-hpa,
# on the loopback interface, with curl as the one client of both servers and
# of both protocols:
#
#   1. one 200 MB file (random data), one client: over TFTP with blksize
#      1468 and 65464, from landscaper serve and from tftpd-hpa, and over
#      HTTP from landscaper serve;
#   2. 50 clients (each from its own loopback address) fetching one 20 MB
#      initrd at once: over HTTP and over TFTP (blksize 1468) from
#      landscaper serve, and over TFTP from tftpd-hpa;
#   3. a real client fetching a 1 MB boot file (ipxe.efi) over TFTP
#      (blksize 1468) one fetch after another, from each server, first
#      alone, then during a flood of read requests that nobody ever
#      acknowledges (issue 17: such requests used to hold every transfer
#      slot of landscaper serve): fetches per second and their median time.
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
# The flood (internal/cmd/landscaper-tftp-flood) sends BENCH_FLOOD_RATE
# read requests a second for ipxe.efi, half with the options blksize and
# tsize, half without, from 46 sockets on 16 loopback addresses
# (127.0.0.10-25; one of them has 16 sockets) that never read or answer.
# Each flood phase: the flood starts, BENCH_FLOOD_WARMUP seconds later the
# client (curl, --max-time 10) starts fetching, for BENCH_FLOOD_SECONDS;
# then the flood stops and the script waits until the server has let go
# of the flood's transfers. The same client, file and flood for both
# servers, which alternate, BENCH_FLOOD_REPS times, each phase also
# without the flood. Fetches per second = fetches received whole / the
# time they took together; the table shows the median over the
# repetitions and the median time of every fetch.
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
# BENCH_INITRD_MB (20), BENCH_CLIENTS (50), BENCH_FLOOD_REPS (3),
# BENCH_FLOOD_SECONDS (15), BENCH_FLOOD_WARMUP (3), BENCH_FLOOD_RATE (100
# requests a second), BENCH_FLOOD_ONLY (1: only the rows of 3),
# BENCH_LANDSCAPER (a landscaper binary to measure instead of the one built
# from this tree, e.g. an older commit's). MB here is 10^6 bytes.
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
flood_reps=${BENCH_FLOOD_REPS:-3}
flood_secs=${BENCH_FLOOD_SECONDS:-15}
flood_warmup=${BENCH_FLOOD_WARMUP:-3}
flood_rate=${BENCH_FLOOD_RATE:-100}
flood_only=${BENCH_FLOOD_ONLY:-0}
[ "$clients" -ge 1 ] && [ "$clients" -le 254 ] || die "BENCH_CLIENTS must be 1 to 254 (one loopback address each)"
bootfile_size=1000000
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
flood_pid=""
cleanup() {
	[ -z "$flood_pid" ] || kill "$flood_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

say "building landscaper, the pxe-nbp provider and the flood"
(cd "$repo" && go build -o "$work/bin/" ./landscaper/cmd/landscaper ./providers/pxe-nbp/cmd/landscaper-provider-pxe-nbp ./internal/cmd/landscaper-tftp-flood)
landscaper=${BENCH_LANDSCAPER:-$work/bin/landscaper}
flood=$work/bin/landscaper-tftp-flood
[ -x "$landscaper" ] || die "BENCH_LANDSCAPER=$landscaper is not an executable"

say "making a ${big_mb} MB and a ${initrd_mb} MB file of random data"
mkdir -m 0755 "$work/files"
head -c "$big_size" /dev/urandom >"$work/files/big.bin"
head -c "$initrd_size" /dev/urandom >"$work/files/initrd.bin"
chmod 0644 "$work/files/big.bin" "$work/files/initrd.bin"
big_sha=$(sha256sum <"$work/files/big.bin" | cut -d' ' -f1)
initrd_sha=$(sha256sum <"$work/files/initrd.bin" | cut -d' ' -f1)
# The boot file, as landscaper serve serves it (an iPXE binary from
# --ipxe-dir) and in tftpd-hpa's directory.
mkdir -m 0755 "$work/ipxe"
head -c "$bootfile_size" /dev/urandom >"$work/ipxe/ipxe.efi"
cp "$work/ipxe/ipxe.efi" "$work/files/ipxe.efi"
chmod 0644 "$work/ipxe/ipxe.efi" "$work/files/ipxe.efi"
bootfile_sha=$(sha256sum <"$work/ipxe/ipxe.efi" | cut -d' ' -f1)

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
"$landscaper" serve --boot-dir "$work/boot" --tftp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --ipxe-dir "$work/ipxe" \
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

# concurrent URL SIZE [BLKSIZE]: $clients transfers at once, each client
# from its own address (127.0.1.N, like as many machines; landscaper serve
# allows one address 8 TFTP transfers); prints the seconds from the first
# start to the last exit.
concurrent() {
	local url=$1 size=$2 opts=() i cpids=() start end failed=0
	[ $# -ge 3 ] && opts=(--tftp-blksize "$3")
	rm -rf "$work/c"
	mkdir "$work/c"
	start=$(date +%s.%N)
	for i in $(seq "$clients"); do
		curl -sS --max-time 900 --interface "127.0.1.$i" "${opts[@]}" -o /dev/null -w '%{size_download}' "$url" >"$work/c/$i" 2>"$work/c/$i.err" &
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

declare -A times=()
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
load_end=""
say "warm-up runs, checking the sha256 of what arrives"
verify "tftp://$l_tftp/ipxe.efi" "$bootfile_sha" 1468
verify "tftp://$h_tftp/ipxe.efi" "$bootfile_sha" 1468
if [ "$flood_only" != 1 ]; then
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
fi

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

# fetch_loop URL SECONDS OUT: fetches URL (the boot file) with curl, one
# fetch after another, for SECONDS (at most 100000 fetches); appends the
# seconds of each fetch received whole to OUT; prints "ok failed elapsed".
fetch_loop() {
	local url=$1 secs=$2 out=$3 ok=0 failed=0 start t
	start=$(date +%s.%N)
	while awk -v a="$start" -v b="$(date +%s.%N)" -v w="$secs" 'BEGIN { exit !(b - a < w) }' &&
		[ $((ok + failed)) -lt 100000 ]; do
		if t=$(curl -sS --tftp-blksize 1468 --max-time 10 -o /dev/null -w '%{time_total} %{size_download}' "$url" 2>>"$work/fetch.err") &&
			[ "${t#* }" = "$bootfile_size" ]; then
			ok=$((ok + 1))
			printf '%s\n' "${t%% *}" >>"$out"
		else
			failed=$((failed + 1))
		fi
	done
	awk -v a="$start" -v b="$(date +%s.%N)" -v o="$ok" -v f="$failed" 'BEGIN { printf "%d %d %.3f\n", o, f, b - a }'
}

# flood_phase SERVER URL OUT: fetch_loop during a flood of SERVER; prints
# "ok failed elapsed sent", sent being the flood's requests.
flood_phase() {
	local server=$1 url=$2 out=$3 res
	"$flood" --server "$server" --file ipxe.efi --rate "$flood_rate" --duration "$((flood_warmup + flood_secs + 60))s" >"$work/flood.out" 2>"$work/flood.err" &
	flood_pid=$!
	sleep "$flood_warmup"
	res=$(fetch_loop "$url" "$flood_secs" "$out")
	kill -TERM "$flood_pid"
	wait "$flood_pid" || die "the flood failed: $(cat "$work/flood.err")"
	flood_pid=""
	printf '%s %s\n' "$res" "$(cat "$work/flood.out")"
}

# metric SERIES: the value of SERIES in landscaper serve's /metrics, 0 if
# it has none (an older landscaper).
metric() { curl -sS --max-time 10 "http://$l_http/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'; }

# settle: waits (at most 60 s) until both servers have let go of what the
# flood started: no TFTP transfer of landscaper serve in flight or waiting
# for its first ACK, no tftpd-hpa child left.
settle() {
	local i
	for i in $(seq 600); do
		if [ "$(metric landscaper_boot_tftp_unacknowledged)" = 0 ] &&
			[ "$(metric 'landscaper_boot_transfers_in_flight{protocol="tftp"}')" = 0 ] &&
			! pgrep -P "$h_pid" >/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	say "warning: the servers still hold flood transfers after 60 s"
}

declare -A fl=()
l_boot=tftp://$l_tftp/ipxe.efi
h_boot=tftp://$h_tftp/ipxe.efi
busy_series='landscaper_boot_transfers_refused_total{protocol="tftp"}'
dropped0=$(metric landscaper_boot_tftp_unacknowledged_dropped_total)
per_addr0=$(metric landscaper_boot_tftp_refused_per_address_total)
busy0=$(metric "$busy_series")
for r in $(seq "$flood_reps"); do
	for srv in l h; do
		case $srv in
		l) target=$l_tftp url=$l_boot name="landscaper serve" ;;
		h) target=$h_tftp url=$h_boot name=tftpd-hpa ;;
		esac
		say "repetition $r of $flood_reps: $name, ${flood_secs} s of fetches of ipxe.efi, no flood"
		fetch_loop "$url" "$flood_secs" "$work/quiet.$srv" >"$work/phase"
		read -r ok failed elapsed <"$work/phase"
		fl[quiet.$srv]+="$ok/$failed/$elapsed "
		say "repetition $r of $flood_reps: $name, ${flood_secs} s of fetches of ipxe.efi during a flood of $flood_rate requests/s"
		flood_phase "$target" "$url" "$work/flood.$srv" >"$work/phase"
		read -r ok failed elapsed sent <"$work/phase"
		fl[flood.$srv]+="$ok/$failed/$elapsed "
		fl[sent.$srv]=$((${fl[sent.$srv]:-0} + sent))
		settle
	done
done
dropped=$(($(metric landscaper_boot_tftp_unacknowledged_dropped_total) - dropped0))
per_addr=$(($(metric landscaper_boot_tftp_refused_per_address_total) - per_addr0))
busy=$(($(metric "$busy_series") - busy0))

# flrow CONDITION SERVER KEY: a row of the flood table. A run is
# ok/failed/elapsed; its fetches/s = ok / elapsed.
declare -A fr=() ft=()
flrow() {
	local runs rates okn failn
	runs=$(tr ' ' '\n' <<<"${fl[$3]}" | grep .)
	rates=$(awk -F/ '{ printf "%.2f\n", $1 / $3 }' <<<"$runs")
	fr[$3]=$(median <<<"$rates")
	ft[$3]=$(if [ -s "$work/$3" ]; then median <"$work/$3"; else echo 0; fi)
	okn=$(awk -F/ '{ s += $1 } END { print s }' <<<"$runs")
	failn=$(awk -F/ '{ s += $2 } END { print s }' <<<"$runs")
	printf '| %s | %s | %s | %s | %s / %s | %s |\n' "$1" "$2" "${fr[$3]}" "${ft[$3]}" "$okn" "$failn" "$(paste -sd, <<<"$rates" | sed 's/,/, /g')"
}

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ] && dirty=" (with uncommitted changes)"

cat <<EOF

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $ncpu CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)
- landscaper commit $commit$dirty${BENCH_LANDSCAPER:+ (measured: $BENCH_LANDSCAPER)}, $(go version | cut -d' ' -f3); $(curl --version | head -1 | cut -d' ' -f1-2); tftpd-hpa $(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null || echo '?')
- load average at start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- loopback only; client: curl for every row
EOF
if [ "$flood_only" != 1 ]; then
	cat <<EOF
- transfers: median of $reps runs (one client) or $creps runs ($clients clients), after a warm-up run that checked the sha256; load average after them: $load_end
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
fi
cat <<EOF

- a real client during a flood of abandoned requests: curl --tftp-blksize 1468 --max-time 10 fetching ipxe.efi ($bootfile_size bytes) one fetch after another for ${flood_secs} s, $flood_reps times per server, without and with the flood, the servers alternating
- the flood: $flood_rate read requests/s for ipxe.efi, never acknowledged, from 46 sockets on 16 loopback addresses, starting ${flood_warmup} s before the fetches: $((${fl[sent.l]} / flood_reps)) requests a phase against landscaper serve, $((${fl[sent.h]} / flood_reps)) against tftpd-hpa; landscaper serve meanwhile dropped $dropped waiting transfers for newer requests and refused $per_addr requests for its cap per address, $busy as busy in all

| condition | server | real fetches/s (median of runs) | median s per fetch | fetches whole / failed | fetches/s of each run |
|---|---|---:|---:|---|---|
EOF
flrow "no flood" "landscaper serve" quiet.l
flrow "no flood" tftpd-hpa quiet.h
flrow "flood" "landscaper serve" flood.l
flrow "flood" tftpd-hpa flood.h
cat <<EOF

| ratio | value |
|---|---:|
| real fetches/s during the flood, landscaper / tftpd-hpa | $(ratio "${fr[flood.l]}" "${fr[flood.h]}") |
| median fetch time during the flood, tftpd-hpa / landscaper | $(ratio "${ft[flood.h]}" "${ft[flood.l]}") |
| real fetches/s, landscaper, during / without the flood | $(ratio "${fr[flood.l]}" "${fr[quiet.l]}") |
| real fetches/s, tftpd-hpa, during / without the flood | $(ratio "${fr[flood.h]}" "${fr[quiet.h]}") |
EOF

# The server must have logged every transfer of a real client (from
# 127.0.0.1; the flood comes from 127.0.0.10 and up) as a success.
bad=$(grep 'msg="boot request"' "$work/serve.log" | grep 'remote=127.0.0.1:' | grep -vc 'outcome=ok' || true)
[ "$bad" = 0 ] || say "warning: landscaper serve logged $bad requests of real clients that did not end ok: $(grep 'msg="boot request"' "$work/serve.log" | grep 'remote=127.0.0.1:' | grep -v 'outcome=ok' | head -3)"
