#!/usr/bin/env bash
# The quickstart demo (what `make demo-quickstart` runs): on a fresh Debian
# machine, as root, installs the dependencies, builds, and runs the
# quickstart deployment (examples/quickstart) in a temporary directory: plan,
# apply, a second plan that must find nothing to do, destroy. Needs no input.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"
cd "$root"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ -t 1 ] || step() { printf '\n==> %s\n' "$*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

step "Installing dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh

step "Building (make build)"
make --no-print-directory build
ls="$root/bin/landscaper"
"$ls" version

work=$(mktemp -d -t landscaper-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$root/examples/quickstart/landscaper.nix" "$work/"
cd "$work"
echo "Working in $work (a copy of examples/quickstart)"

step "landscaper plan"
"$ls" plan || die "plan failed"

step "landscaper apply --auto-approve"
"$ls" apply --auto-approve || die "apply failed"

step "The files it created"
files=$(find out -type f | sort)
for f in $files; do
	printf -- '--- %s (mode %s)\n' "$f" "$(stat -c %a "$f")"
	cat "$f"
done
printf -- '--- state: %s (mode %s)\n' .landscaper/state.json "$(stat -c %a .landscaper/state.json)"
"$ls" state list
count=$("$ls" state list | wc -l)
want=$(sha256sum out/greeting.txt | cut -d' ' -f1)
grep -q "$want" out/report.txt || die "out/report.txt does not hold greeting.txt's sha256"

step "landscaper plan --detailed-exitcode (0 means nothing left to do)"
rc=0
"$ls" plan --detailed-exitcode || rc=$?
[ "$rc" -eq 0 ] || die "the plan after apply exited $rc (expected 0: no changes)"
echo "exit code: $rc"

step "landscaper destroy --auto-approve"
"$ls" destroy --auto-approve || die "destroy failed"
left=$(find out -type f | wc -l)
[ "$left" -eq 0 ] || die "$left files left after destroy"

cd "$root"
rm -rf "$work"
trap - EXIT

step "Demo complete"
cat <<EOF
- apply created the quickstart's $count members in dependency order, writing
  $(echo $files | sed 's/ /, /g')
- out/report.txt holds greeting.txt's sha256 ($want)
  and the output of the wordCount command
- the second plan found no changes (exit code 0)
- destroy removed every file; the temporary directory is gone
Next: read examples/quickstart/README.md, or run the tests with: make test
EOF
