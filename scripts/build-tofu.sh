#!/usr/bin/env bash
# Builds what scripts/bench.sh needs to time OpenTofu beside landscaper:
#
#   tofu   OpenTofu v1.12.6, from the Go module github.com/opentofu/opentofu
#          (`go build ./cmd/tofu` in the module's directory, with the flags of
#          OpenTofu's release builds; `go install` refuses the module because
#          of its replace directives);
#   local  hashicorp/terraform-provider-local v1.4.0 (the only version the
#          Go module proxy lists), installed into a filesystem mirror
#          directory for `tofu init` to find offline.
#
# Both are kept in BENCH_TOFU_CACHE (default ~/.cache/landscaper/bench), so
# only the first run builds them (6 to 13 minutes for tofu on 2 shared CPUs).
#
# Prints on stdout, for bench.sh, lines of the form
#   tofu=PATH            the tofu binary
#   local_mirror=DIR     the filesystem mirror holding hashicorp/local 1.4.0
#   skip=TEXT            why something is missing
# and its progress on stderr. Exits 0 when tofu is there, 1 when not (no Go,
# no network for the module download, a failed build): the caller goes on
# without OpenTofu.
set -uo pipefail

export PATH="/usr/local/go/bin:$PATH"
exec </dev/null

tofu_version=v1.12.6
local_version=1.4.0
cache=${BENCH_TOFU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/landscaper/bench}
tofu_bin=$cache/tofu-$tofu_version
mirror=$cache/tofu-mirror

note() { printf 'build-tofu: %s\n' "$*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/landscaper-build-tofu.XXXXXX") || exit 1
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

# fail TEXT: a note, kept in $tmp/why for the skip line (functions run in
# command substitutions cannot set a variable).
fail() {
	note "$*"
	printf '%s' "$*" | tr -s '\n\t' '  ' | cut -c1-300 | sed 's/[[:space:]]*$//' >"$tmp/why"
}
why() { cat "$tmp/why" 2>/dev/null || echo "see the notes of scripts/build-tofu.sh"; }

# module_dir MODULE@VERSION: downloads the module into the Go module cache
# and prints its directory. Run outside any module, so no go.mod is touched.
module_dir() {
	local json dir
	json=$(cd "$tmp" && GOFLAGS=-mod=mod timeout 300 go mod download -json "$1" 2>"$tmp/download.err")
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		fail "go mod download $1 failed: $( (printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | sed 's/\\"/"/g'; cat "$tmp/download.err") | head -n 3 | tr '\n' ' ')"
		return 1
	fi
	printf '%s\n' "$dir"
}

build_tofu() {
	local dir log=$tmp/tofu-build.log out=$tmp/tofu
	local flags=(-trimpath -buildvcs=false -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no")
	dir=$(module_dir "github.com/opentofu/opentofu@$tofu_version") || return 1
	note "building OpenTofu $tofu_version in $dir (once; 6 to 13 minutes on 2 shared CPUs)"
	if ! (cd "$dir" && CGO_ENABLED=0 timeout 3600 go build -mod=readonly "${flags[@]}" -o "$out" ./cmd/tofu) >"$log" 2>&1; then
		# The module cache is read-only; should the build need to complete
		# go.sum, it can only do so in a writable copy.
		note "the build in the module cache failed ($(tail -n 1 "$log")); trying a writable copy"
		cp -r "$dir/." "$tmp/tofu-src" && chmod -R u+w "$tmp/tofu-src" || return 1
		if ! (cd "$tmp/tofu-src" && CGO_ENABLED=0 timeout 3600 go build -mod=mod "${flags[@]}" -o "$out" ./cmd/tofu) >"$log" 2>&1; then
			fail "go build ./cmd/tofu failed: $(tail -n 3 "$log" | tr '\n' ' ')"
			return 1
		fi
	fi
	"$out" version >/dev/null 2>&1 || { fail "the built tofu does not run"; return 1; }
	mkdir -p "$cache" && mv -f "$out" "$tofu_bin"
}

# build_local: hashicorp/terraform-provider-local v1.4.0 (2019, Terraform
# plugin SDK v1, plugin protocol 5). Its module zip keeps only
# vendor/modules.txt of its vendor directory, so it is built from a writable
# copy without it, resolving its go.mod (whose module path still says
# terraform-providers) through the module proxy.
build_local() {
	local dir src=$tmp/local-src log=$tmp/local-build.log platform dest
	dir=$(module_dir "github.com/hashicorp/terraform-provider-local@v$local_version") || return 1
	platform=$(go env GOOS)_$(go env GOARCH)
	dest=$mirror/registry.opentofu.org/hashicorp/local/$local_version/$platform
	note "building hashicorp/local $local_version from $dir"
	cp -r "$dir/." "$src" && chmod -R u+w "$src" && rm -rf "$src/vendor" || return 1
	if ! (cd "$src" && go mod edit -go=1.13 && timeout 1800 go build -mod=mod -trimpath -buildvcs=false -o "$tmp/provider" .) >"$log" 2>&1; then
		fail "go build of terraform-provider-local v$local_version failed: $(tail -n 3 "$log" | tr '\n' ' ')"
		return 1
	fi
	mkdir -p "$dest" && mv -f "$tmp/provider" "$dest/terraform-provider-local_v$local_version"
}

local_installed() { compgen -G "$mirror/registry.opentofu.org/hashicorp/local/$local_version/*/terraform-provider-local_v$local_version" >/dev/null; }

if [ ! -x "$tofu_bin" ]; then
	if ! command -v go >/dev/null; then
		fail "no go command to build it"
		echo "skip=OpenTofu not measured: $(why)"
		exit 1
	fi
	if ! build_tofu; then
		echo "skip=OpenTofu not measured: $(why)"
		exit 1
	fi
fi
echo "tofu=$tofu_bin"

if ! local_installed; then
	if ! command -v go >/dev/null; then
		fail "no go command to build it"
	fi
	if ! command -v go >/dev/null || ! build_local; then
		echo "skip=hashicorp/local $local_version (local_file) not measured: $(why)"
		exit 0
	fi
fi
echo "local_mirror=$mirror"
