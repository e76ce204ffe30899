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
# In the same run, OpenTofu (built by scripts/build-tofu.sh, cached) does the
# same for the same shapes and sizes, timed the same way: `tofu apply
# -auto-approve` (create), `tofu plan -detailed-exitcode` (no-op plan, with
# its default refresh), `tofu destroy -auto-approve`, each after an untimed
# `tofu init` in a fresh directory, default -parallelism (10), offline (a
# CLI configuration whose only provider source is a filesystem mirror). Two
# resource types: the built-in terraform_data (no provider), and
# hashicorp/local 1.4.0's local_file when it could be built. The table gives
# the ratios OpenTofu time / landscaper time. When OpenTofu cannot be built
# (no Go, no network) the script says so and goes on without it.
#
# Environment: BENCH_SIZES (default "10 100 1000"), BENCH_REPS (default 3),
# BENCH_DIR (where the temporary directories go; default $TMPDIR or /tmp),
# LANDSCAPER (the binary; default ./bin/landscaper), BENCH_TOFU=0 (leave
# OpenTofu out), BENCH_TOFU_CACHE (where build-tofu.sh keeps its builds).
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

# OpenTofu, built (or found in the cache) before anything is timed.
tofu_bin='' tofu_mirror='' tofu_notes=()
if [ "${BENCH_TOFU:-1}" = 0 ]; then
	tofu_notes+=("OpenTofu not measured: BENCH_TOFU=0")
else
	while IFS='=' read -r key value; do
		case "$key" in
		tofu) tofu_bin=$value ;;
		local_mirror) tofu_mirror=$value ;;
		skip) tofu_notes+=("$value") ;;
		esac
	done < <(bash "$root/scripts/build-tofu.sh" || true)
	if [ -z "$tofu_bin" ] && [ "${#tofu_notes[@]}" -eq 0 ]; then
		tofu_notes+=("OpenTofu not measured: scripts/build-tofu.sh gave no binary")
	fi
fi
for note in "${tofu_notes[@]}"; do printf 'bench: note: %s\n' "$note" >&2; done
if [ -n "$tofu_bin" ]; then
	# Offline: the only place tofu init may take a provider from is the
	# mirror (an empty directory when hashicorp/local was not built), and
	# no checkpoint calls.
	mkdir -p "$work/empty-mirror"
	cat >"$work/tofu.tfrc" <<-EOF
		provider_installation {
		  filesystem_mirror {
		    path = "${tofu_mirror:-$work/empty-mirror}"
		  }
		}
		disable_checkpoint = true
	EOF
	export TF_CLI_CONFIG_FILE="$work/tofu.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
	unset TF_DATA_DIR TF_PLUGIN_CACHE_DIR TF_LOG TF_CLI_ARGS TF_CLI_ARGS_apply TF_CLI_ARGS_plan TF_CLI_ARGS_destroy TF_CLI_ARGS_init
fi

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
if [ -n "$tofu_bin" ]; then
	echo "- $("$tofu_bin" version 2>/dev/null | head -n 1) (built from the Go module by scripts/build-tofu.sh)$([ -n "$tofu_mirror" ] && echo ", hashicorp/local 1.4.0 from a filesystem mirror")"
fi
for note in "${tofu_notes[@]}"; do echo "- $note"; done
echo "- median of $reps runs; times are wall-clock seconds of the whole command"
echo
echo "| shape | N | create s | no-op plan s | destroy s | nix invocations (apply) | plugin processes |"
echo "|---|---:|---:|---:|---:|---:|---:|"
declare -A ls_create=() ls_plan=() ls_destroy=()
for shape in independent chain; do
	for n in $sizes; do
		creates=() plans=() destroys=() nixes=() plugins=()
		for ((r = 1; r <= reps; r++)); do
			read -r c p d x g < <(run_once "$shape" "$n" "$r") || die "$shape/$n: run $r failed"
			creates+=("$c") plans+=("$p") destroys+=("$d") nixes+=("$x") plugins+=("$g")
			printf 'bench: %s N=%s run %d: create %ss, no-op plan %ss, destroy %ss, nix %s, plugins %s\n' \
				"$shape" "$n" "$r" "$c" "$p" "$d" "$x" "$g" >&2
		done
		ls_create[$shape/$n]=$(median "${creates[@]}")
		ls_plan[$shape/$n]=$(median "${plans[@]}")
		ls_destroy[$shape/$n]=$(median "${destroys[@]}")
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$shape" "$n" \
			"${ls_create[$shape/$n]}" "${ls_plan[$shape/$n]}" "${ls_destroy[$shape/$n]}" \
			"$(median "${nixes[@]}")" "$(median "${plugins[@]}")"
	done
done

# OpenTofu in the same run. The configurations are the same deployments:
# resource fI for member fI, the chain's member I holding
# "member I after <sha256 of member I-1's value>", through
# terraform_data.fI-1.output or local_file.fI-1.content.

# gen_tofu KIND SHAPE N: writes main.tf (KIND terraform_data or local_file).
gen_tofu() {
	awk -v kind="$1" -v shape="$2" -v n="$3" 'BEGIN {
		if (kind == "local_file")
			print "terraform {\n  required_providers {\n    local = { source = \"hashicorp/local\", version = \"1.4.0\" }\n  }\n}"
		attr = kind == "local_file" ? "content" : "input"
		prev = kind == "local_file" ? "content" : "output"
		for (i = 1; i <= n; i++) {
			if (shape == "chain" && i > 1)
				c = sprintf("member %d after ${sha256(%s.f%d.%s)}\\n", i, kind, i - 1, prev)
			else
				c = sprintf("member %d\\n", i)
			printf "resource \"%s\" \"f%d\" {\n", kind, i
			if (kind == "local_file")
				printf "  filename = \"out/f%d\"\n", i
			printf "  %s = \"%s\"\n}\n", attr, c
		}
		if (kind == "terraform_data" && n > 1) {
			printf "output \"last\" { value = terraform_data.f%d.output }\n", n
			printf "output \"prev\" { value = terraform_data.f%d.output }\n", n - 1
		}
	}' >main.tf
}

# tofu_run LOG ARGS...: runs tofu, its output into LOG; on failure shows
# the end of LOG.
tofu_run() {
	local log=$1
	shift
	if ! "$tofu_bin" "$@" -input=false -no-color >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		return 1
	fi
}

tofu_once() { # KIND SHAPE N REP -> "create plan destroy"
	local kind=$1 shape=$2 n=$3 dir="$work/tofu-$1-$2-$3-$4"
	mkdir "$dir"
	(
		cd "$dir"
		gen_tofu "$kind" "$shape" "$n"
		tofu_run init.log init || die "tofu $kind $shape/$n: init failed"

		t0=$(now)
		tofu_run apply.log apply -auto-approve || die "tofu $kind $shape/$n: apply failed"
		t1=$(now)
		grep -q "Apply complete! Resources: $n added, 0 changed, 0 destroyed." apply.log || die "tofu $kind $shape/$n: apply did not add $n: $(tail -n 1 apply.log)"
		if [ "$kind" = local_file ]; then
			[ "$(find out -type f | wc -l)" -eq "$n" ] || die "tofu $kind $shape/$n: expected $n files"
			if [ "$shape" = chain ] && [ "$n" -gt 1 ]; then
				want="member $n after $(sha256sum "out/f$((n - 1))" | cut -d' ' -f1)"
				[ "$(cat "out/f$n")" = "$want" ] || die "tofu $kind $shape/$n: out/f$n does not hold f$((n - 1))'s sha256"
			fi
		elif [ "$shape" = chain ] && [ "$n" -gt 1 ]; then
			want="member $n after $("$tofu_bin" output -raw prev | sha256sum | cut -d' ' -f1)"
			[ "$("$tofu_bin" output -raw last)" = "$want" ] || die "tofu $kind $shape/$n: f$n's output does not hold f$((n - 1))'s sha256"
		fi

		t2=$(now)
		rc=0
		"$tofu_bin" plan -detailed-exitcode -input=false -no-color >plan.log 2>&1 || rc=$?
		t3=$(now)
		[ "$rc" -eq 0 ] || { tail -n 20 plan.log >&2; die "tofu $kind $shape/$n: the plan after apply is not empty (exit $rc)"; }

		t4=$(now)
		tofu_run destroy.log destroy -auto-approve || die "tofu $kind $shape/$n: destroy failed"
		t5=$(now)
		grep -q "Destroy complete! Resources: $n destroyed." destroy.log || die "tofu $kind $shape/$n: destroy did not destroy $n: $(tail -n 1 destroy.log)"
		if [ "$kind" = local_file ]; then
			[ "$(find out -type f | wc -l)" -eq 0 ] || die "tofu $kind $shape/$n: files left after destroy"
		fi

		echo "$(elapsed "$t0" "$t1") $(elapsed "$t2" "$t3") $(elapsed "$t4" "$t5")"
	)
	rm -rf "$dir"
}

ratio() { awk -v t="$1" -v l="$2" 'BEGIN { if (l > 0) printf "%.1f", t / l; else print "-" }'; }

if [ -n "$tofu_bin" ]; then
	kinds=(terraform_data)
	[ -n "$tofu_mirror" ] && kinds+=(local_file)
	echo
	echo "| OpenTofu ($("$tofu_bin" version 2>/dev/null | head -n 1 | cut -d' ' -f2)) | shape | N | create s | create, OpenTofu / landscaper | no-op plan s | no-op plan, OpenTofu / landscaper | destroy s | destroy, OpenTofu / landscaper |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
	for kind in "${kinds[@]}"; do
		label=$kind
		[ "$kind" = local_file ] && label="local_file (hashicorp/local 1.4.0)"
		for shape in independent chain; do
			for n in $sizes; do
				creates=() plans=() destroys=()
				for ((r = 1; r <= reps; r++)); do
					read -r c p d < <(tofu_once "$kind" "$shape" "$n" "$r") || die "tofu $kind $shape/$n: run $r failed"
					creates+=("$c") plans+=("$p") destroys+=("$d")
					printf 'bench: tofu %s %s N=%s run %d: create %ss, no-op plan %ss, destroy %ss\n' \
						"$kind" "$shape" "$n" "$r" "$c" "$p" "$d" >&2
				done
				c=$(median "${creates[@]}") p=$(median "${plans[@]}") d=$(median "${destroys[@]}")
				printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$shape" "$n" \
					"$c" "$(ratio "$c" "${ls_create[$shape/$n]}")" \
					"$p" "$(ratio "$p" "${ls_plan[$shape/$n]}")" \
					"$d" "$(ratio "$d" "${ls_destroy[$shape/$n]}")"
			done
		done
	done
fi

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
