#!/usr/bin/env bash
# Landscaper benchmark (what `make bench` runs, after `make build`).
#
# For N local.file members in two shapes:
#   independent  N files, no references between them;
#   chain        one chain: member i's contents include member i-1's sha256;
# each run, in a fresh temporary directory:
#   create   `landscaper apply --auto-approve --json` on empty state,
#   no-op    `landscaper plan --detailed-exitcode` right after (must exit 0),
#   destroy  `landscaper destroy --auto-approve --json`.
# Each run is repeated BENCH_REPS times (default 3); the table shows medians
# of wall time, and the nix invocations and plugin processes that apply
# reports in its JSON summary line.
#
# Environment: BENCH_SIZES (default "10 100 1000"), BENCH_REPS (default 3),
# BENCH_DIR (where the temporary directories go; default $TMPDIR or /tmp),
# LANDSCAPER (the binary; default ./bin/landscaper).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"
exec </dev/null

sizes=${BENCH_SIZES:-10 100 1000}
reps=${BENCH_REPS:-3}
base=${BENCH_DIR:-${TMPDIR:-/tmp}}
ls_bin=${LANDSCAPER:-$root/bin/landscaper}

die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
[ -x "$ls_bin" ] || die "$ls_bin not found; run make build (or make bench)"
command -v nix-instantiate >/dev/null || die "nix-instantiate not found; run scripts/install-deps.sh"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# json_field LINE NAME: an integer field of a flat JSON object.
json_field() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p"; }

# gen SHAPE N: writes landscaper.nix for N members f1..fN.
gen() {
	awk -v shape="$1" -v n="$2" 'BEGIN {
		print "{ members, providers, ... }:"
		print "{"
		for (i = 1; i <= n; i++) {
			if (shape == "chain" && i > 1)
				c = sprintf("member %d after ${members.f%d.outputs.sha256}\\n", i, i - 1)
			else
				c = sprintf("member %d\\n", i)
			printf "  members.f%d = { type = providers.local.file; inputs = { name = \"out/f%d\"; contents = \"%s\"; }; };\n", i, i, c
		}
		print "}"
	}' >landscaper.nix
}

# check_summary OUTPUT FIELD WANT: the summary line's FIELD must be WANT and
# nothing may have failed.
check_summary() {
	local summary
	summary=$(printf '%s\n' "$1" | tail -n 1)
	case "$summary" in *'"kind":"summary"'*) ;; *) die "no summary line in the --json output: $summary" ;; esac
	[ "$(json_field "$summary" "$2")" = "$3" ] || die "expected $2=$3: $summary"
	case "$summary" in *'"failed":null'* | *'"failed":[]'*) ;; *) die "failures: $summary" ;; esac
	printf '%s\n' "$summary"
}

work=$(mktemp -d "$base/landscaper-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

run_once() { # SHAPE N REP -> "create plan destroy nix plugins"
	local shape=$1 n=$2 dir="$work/$1-$2-$3"
	mkdir "$dir"
	(
		cd "$dir"
		gen "$shape" "$n"

		t0=$(now)
		out=$("$ls_bin" apply --auto-approve --json) || die "$shape/$n: apply failed"
		t1=$(now)
		summary=$(check_summary "$out" created "$n")
		[ "$(find out -type f | wc -l)" -eq "$n" ] || die "$shape/$n: expected $n files"
		if [ "$shape" = chain ] && [ "$n" -gt 1 ]; then
			want="member $n after $(sha256sum "out/f$((n - 1))" | cut -d' ' -f1)"
			[ "$(cat "out/f$n")" = "$want" ] || die "$shape/$n: out/f$n does not hold f$((n - 1))'s sha256"
		fi

		t2=$(now)
		rc=0
		"$ls_bin" plan --detailed-exitcode >/dev/null || rc=$?
		t3=$(now)
		[ "$rc" -eq 0 ] || die "$shape/$n: the plan after apply is not empty (exit $rc)"

		t4=$(now)
		out=$("$ls_bin" destroy --auto-approve --json) || die "$shape/$n: destroy failed"
		t5=$(now)
		check_summary "$out" deleted "$n" >/dev/null
		[ "$(find out -type f | wc -l)" -eq 0 ] || die "$shape/$n: files left after destroy"

		echo "$(elapsed "$t0" "$t1") $(elapsed "$t2" "$t3") $(elapsed "$t4" "$t5") $(json_field "$summary" nix_invocations) $(json_field "$summary" plugin_processes)"
	)
	rm -rf "$dir"
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
fs=$(df -PT "$base" | awk 'NR == 2 { print $2 }')
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$rev (with uncommitted changes)"; fi

echo "# Landscaper benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "- work directory: $base ($fs)"
echo "- $("$ls_bin" version), commit $rev; $(nix-instantiate --version)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
echo "- median of $reps runs; times are wall-clock seconds of the whole command"
echo
echo "| shape | N | create s | no-op plan s | destroy s | nix invocations (apply) | plugin processes |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for shape in independent chain; do
	for n in $sizes; do
		creates=() plans=() destroys=() nixes=() plugins=()
		for ((r = 1; r <= reps; r++)); do
			read -r c p d x g < <(run_once "$shape" "$n" "$r") || die "$shape/$n: run $r failed"
			creates+=("$c") plans+=("$p") destroys+=("$d") nixes+=("$x") plugins+=("$g")
			printf 'bench: %s N=%s run %d: create %ss, no-op plan %ss, destroy %ss, nix %s, plugins %s\n' \
				"$shape" "$n" "$r" "$c" "$p" "$d" "$x" "$g" >&2
		done
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$shape" "$n" \
			"$(median "${creates[@]}")" "$(median "${plans[@]}")" "$(median "${destroys[@]}")" \
			"$(median "${nixes[@]}")" "$(median "${plugins[@]}")"
	done
done

# A baseline from the same run: the file system's own cost of creating and
# removing the files, with a bash loop and no landscaper, so the figures
# above can be read against what this disk allows.
baseline() { # N -> "create remove"
	local n=$1 dir="$work/baseline-$1"
	mkdir -p "$dir/out"
	local t0 t1 t2 i
	t0=$(now)
	for ((i = 1; i <= n; i++)); do printf 'file %d\n' "$i" >"$dir/out/f$i"; done
	t1=$(now)
	rm -r "$dir/out"
	t2=$(now)
	rm -rf "$dir"
	echo "$(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2")"
}
echo
echo "| baseline (bash loop, no landscaper) | N | create s | remove s |"
echo "|---|---:|---:|---:|"
for n in $sizes; do
	bc=() br=()
	for ((r = 1; r <= reps; r++)); do
		read -r c d < <(baseline "$n")
		bc+=("$c") br+=("$d")
	done
	printf '| files written one by one | %s | %s | %s |\n' "$n" "$(median "${bc[@]}")" "$(median "${br[@]}")"
done
