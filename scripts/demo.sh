#!/usr/bin/env bash
# The Landscaper demo (what `make demo` runs): on a fresh Debian machine, as
# root, installs the dependencies, builds, and installs a simulated new
# server with the installation flow of examples/install in one `landscaper
# apply`: a boot server (`landscaper serve`) on loopback, a stand-in server
# that boots from it (it fetches its entry over TFTP, then starts sshd in a
# mount namespace of its own with the host key and authorized_keys the entry
# carried), then the apply: keys, boot entry, wait for SSH, host key
# rotation, system activation. It shows the result, destroys the
# deployment, stops everything it started and removes its files. Needs no
# input.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"
cd "$root"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ -t 1 ] || step() { printf '\n==> %s\n' "$*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

# The simulated server's MAC; its SSH port is chosen below.
mac=52:54:00:6c:73:02

step "Installing dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh

work=$(mktemp -d -t landscaper-demo.XXXXXX)
serve_pid=
server_pid=
cmd_pid=
# stop PID: SIGTERM, then wait for it (each cleans up after itself).
stop() {
	[ -n "$1" ] || return 0
	if kill -0 "$1" 2>/dev/null; then
		kill -TERM "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}
cleanup() {
	stop "$cmd_pid"
	stop "$server_pid"
	stop "$serve_pid"
	rm -rf "$work"
}
trap cleanup EXIT
# Ctrl-C or SIGTERM: exit, which runs cleanup.
trap 'exit 130' INT
trap 'exit 143' TERM
# run CMD...: runs a long command in the background and waits for it, so
# that a signal reaches the traps at once (and cleanup stops the command)
# rather than after the command has finished. Its stdin stays the script's
# (a background command's is /dev/null otherwise): landscaper shows its
# live display when stdin and stdout are a terminal.
run() {
	"$@" 0<&0 &
	cmd_pid=$!
	local rc=0
	wait "$cmd_pid" || rc=$?
	cmd_pid=
	return "$rc"
}

step "Building (make build, and the simulated server)"
make --no-print-directory build
go build -o "$work/bin/" ./internal/cmd/landscaper-demo-server
ls="$root/bin/landscaper"
"$ls" version

step "Starting the boot server: landscaper serve"
mkdir -p "$work/boot"
"$ls" serve --boot-dir "$work/boot" --tftp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --ipxe-dir "" \
	>"$work/serve.log" 2>&1 &
serve_pid=$!
tftp=
for _ in $(seq 1 300); do
	tftp=$(sed -n 's/.*msg="boot server listening".* tftp=\([0-9.]*:[0-9]*\).*/\1/p' "$work/serve.log")
	[ -n "$tftp" ] && break
	kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; die "landscaper serve exited"; }
	sleep 0.1
done
[ -n "$tftp" ] || { cat "$work/serve.log"; die "landscaper serve did not start listening"; }
http=$(sed -n 's/.*msg="boot server listening".* http=\([0-9.]*:[0-9]*\).*/\1/p' "$work/serve.log")
echo "landscaper serve --boot-dir $work/boot: TFTP on $tftp, HTTP on $http"

step "Powering on the new server (simulated)"
port=$("$work/bin/landscaper-demo-server" free-port)
"$work/bin/landscaper-demo-server" --boot-url "tftp://$tftp/" --mac "$mac" --ssh-port "$port" --dir "$work/server" \
	>"$work/server.log" 2>&1 &
server_pid=$!
cat <<EOF
A stand-in server with MAC $mac (internal/cmd/landscaper-demo-server): it
asks the boot server for machine/${mac//:/-}.ipxe over TFTP until it has a
boot entry, fetches the entry's files, unpacks its extra initrd, and then
starts sshd on 127.0.0.1:$port with the host key and authorized_keys found
there. Nothing answers on that port yet.
EOF

step "The deployment: examples/install, with this machine's parameters"
dep="$work/deployment"
mkdir -p "$dep"
cp "$root"/examples/install/landscaper.nix "$root"/examples/install/params.nix "$dep/"
cat >"$dep/params.local.nix" <<EOF
# Written by scripts/demo.sh: overrides examples/install/params.nix.
{
  address = "127.0.0.1";
  port = $port;
  mac = "$mac";
  bootDir = "$work/boot";
}
EOF
echo "--- $dep/params.local.nix"
cat "$dep/params.local.nix"
cd "$dep"

step "landscaper apply --auto-approve: the installation flow"
run "$ls" apply --auto-approve || {
	echo "--- the server's log"; cat "$work/server.log"
	die "apply failed"
}

step "What the new server did (its log)"
cat "$work/server.log"

step "The result"
host="$work/server/host"
want=$(nix-instantiate --eval -E '(import ./params.nix).toplevel.outPath' | tr -d '"')
current=$(readlink "$host/run/current-system" || true)
profile=$(readlink -f "$host/nix/var/nix/profiles/system" || true)
bootdefault=$(cat "$host/nix/var/standin/boot-default" 2>/dev/null || true)
presented=$(ssh-keyscan -T 10 -t ed25519 -p "$port" 127.0.0.1 2>/dev/null | ssh-keygen -lf - | awk '{ print $2 }')
fingerprint() { "$ls" state show "$1" | sed -n 's/^ *"fingerprint": "\(SHA256:[^"]*\)".*/\1/p'; }
temporary=$(fingerprint server.installerHostKey)
recorded=$(fingerprint server.hostKey)
cat <<EOF
The server (127.0.0.1:$port) runs its system:
  /run/current-system          $current
  the system profile           $profile
  the boot default             $bootdefault
  the example's toplevel       $want
Its host key:
  presented over SSH now       $presented   (ssh-keyscan)
  recorded in the state        $recorded   (server.hostKey.fingerprint)
  the temporary installer key  $temporary   (server.installerHostKey.fingerprint)
EOF
[ -n "$want" ] && [ "$current" = "$want" ] && [ "$profile" = "$want" ] && [ "$bootdefault" = "$want" ] ||
	die "the server does not run and boot $want"
[ -n "$presented" ] && [ "$presented" = "$recorded" ] || die "the server presents $presented, the state records $recorded"
[ "$presented" != "$temporary" ] || die "the server still presents the temporary host key"
"$ls" state list

step "landscaper plan --detailed-exitcode (0 means nothing left to do)"
rc=0
"$ls" plan --detailed-exitcode || rc=$?
[ "$rc" -eq 0 ] || die "the plan after apply exited $rc (expected 0: no changes)"
echo "exit code: $rc"

step "landscaper destroy --auto-approve"
run "$ls" destroy --auto-approve || die "destroy failed"
script=$(curl -sS "tftp://$tftp/machine/${mac//:/-}.ipxe")
case "$script" in
*"there is no boot entry"*) echo "The boot server now has no entry for $mac: a reboot would not install it again." ;;
*) die "the boot server still serves an entry for $mac after destroy" ;;
esac

step "Stopping the server and the boot server"
cd "$root"
stop "$server_pid"
tail -n 2 "$work/server.log"
stop "$serve_pid"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "something still listens on 127.0.0.1:$port"; fi
if kill -0 "$serve_pid" 2>/dev/null || kill -0 "$server_pid" 2>/dev/null; then die "a process of the demo is still running"; fi
echo "landscaper serve and the server have exited; nothing listens on 127.0.0.1:$port"
server_pid= serve_pid=
rm -rf "$work"
trap - EXIT INT TERM

step "Demo complete"
cat <<EOF
- one landscaper apply installed the simulated server: two ssh-keypair keys,
  a pxe-nbp boot entry (fetched by the server over TFTP from landscaper
  serve), nixos.host-key (waited for SSH, checked the temporary host key
  $temporary, rotated it to $recorded),
  nixos.system (copied and activated $(basename "$want"))
- the second plan found no changes (exit code 0); destroy removed the boot entry
- everything it started has stopped and the temporary directory is gone
Next: read examples/install/README.md, or run the tests with: make test
EOF
