package activation

import _ "embed"

// The scripts an activation runs on the host, as root. Each takes its
// arguments as $1, $2, ...

// supervisorScript is the dead-man switch run on the host.
//
//go:embed supervisor.sh
var supervisorScript string

// probeScript reports what the host runs and, when $2 is "preflight",
// whether it holds $1 (the new system, may be empty) and whether anything
// stands in the way of an activation, as key=value lines. A link that is
// not there reads as "". Links are resolved with the shell's own cd -P
// and compared with test -ef where it can: the probe runs two or three
// times per host and apply, and each program started costs the host
// about a millisecond of CPU.
const probeScript = `new="$1"
# resolve KEY LINK prints KEY=where LINK leads ("" when nowhere); a
# directory is resolved by cd -P in this shell, which starts no process.
resolve() {
	if [ -d "$2" ] && cd -P "$2" 2>/dev/null; then
		printf '%s=%s\n' "$1" "$PWD"
		cd /
	elif [ -e "$2" ]; then
		printf '%s=%s\n' "$1" "$(readlink -f "$2" 2>/dev/null)"
	else
		printf '%s=\n' "$1"
	fi
}
resolve current /run/current-system
resolve profile /nix/var/nix/profiles/system
resolve booted /run/booted-system
if [ -n "$new" ]; then
	if [ "$2" = preflight ]; then
		# A path that is not there is not valid: only one that is there
		# needs nix-store to say whether it is complete and registered.
		if [ -e "$new" ] && nix-store --check-validity "$new" 2>/dev/null; then echo present=1; else echo present=0; fi
	fi
	for f in kernel initrd kernel-modules; do
		if [ -e "/run/booted-system/$f" ] || [ -e "$new/$f" ]; then
			[ "/run/booted-system/$f" -ef "$new/$f" ] || echo reboot=1
		fi
	done
fi
[ "$2" = preflight ] || exit 0
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl list-units --state=failed --no-legend --plain 2>/dev/null | while read -r unit rest; do echo "failed=$unit"; done
fi
for lock in /run/landscaper/lock /run/nixos/switch-to-configuration.lock; do
	if [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null; then echo "busy=$lock"; fi
done
exit 0
`

// startScript writes the supervisor (stdin) and its params into $1 and
// starts it detached from this session (an SSH session, or the agent). A
// transient unit gets the manager's environment, not the session's: on
// NixOS its PATH holds only systemd's own bin directory (no coreutils, no
// flock), so the session's PATH, in which the pre-flight found what the
// supervisor runs, is passed on.
const startScript = `set -eu
dir="$1"
params="$2"
mkdir -p /run/landscaper "$dir"
chmod 0700 /run/landscaper
cat >"$dir/supervisor.sh"
printf '%s\n' "$params" >"$dir/params"
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
	systemd-run --unit="landscaper-activate-$(basename "$dir")" --collect --no-ask-password --quiet \
		--service-type=exec -p KillMode=process --setenv=PATH="$PATH" /bin/sh "$dir/supervisor.sh" "$dir"
else
	setsid -f /bin/sh "$dir/supervisor.sh" "$dir" </dev/null >"$dir/supervisor.log" 2>&1
fi
`

// awaitStatusScript waits on the host, up to 20 s, while the status file
// ($1) holds one of the other arguments or a rollback is in progress, and
// prints the status then: the driver learns of a change within 50 ms
// without a round trip per look (the look is the shell's own read, not a
// program started 20 times a second). A pending status while nobody holds
// the supervisor's lock (it holds it as long as it lives; checked once a
// second) means the supervisor is gone without a result (killed, or it
// could not run): that prints "gone <status>". The status is read again
// after the lock was found free, since a supervisor writes its result
// before it exits; an absent status counts only once the supervisor was
// written 10 s ago (it may not have taken the lock yet).
const awaitStatusScript = `f="$1"
shift
dir=${f%/*}
pending() {
	for p in "$@"; do if [ "$s" = "$p" ]; then return 0; fi; done
	case "$s" in rolling-back*) return 0 ;; esac
	return 1
}
i=0
while [ "$i" -lt 400 ]; do
	s=
	{ read -r s <"$f"; } 2>/dev/null
	pending "$@" || break
	if [ $((i % 20)) -eq 19 ]; then
		if [ -n "$s" ] || [ $(($(date +%s) - $(stat -c %Y "$dir/supervisor.sh" 2>/dev/null || date +%s))) -ge 10 ]; then
			if flock -n /run/landscaper/lock true 2>/dev/null; then
				s=
				{ read -r s <"$f"; } 2>/dev/null
				if pending "$@"; then s="gone $s"; fi
				break
			fi
		fi
	fi
	sleep 0.05
	i=$((i + 1))
done
printf '%s\n' "$s"
`

// touchScript creates the files named by $2... in the directory $1, in
// order: the driver's messages to the supervisor.
const touchScript = `dir="$1"
shift
cd "$dir" && touch "$@"
`

// activationLogScript prints the tail of switch-to-configuration's output
// in the activation's directory $1.
const activationLogScript = `tail -n 20 "$1/activate.log" 2>/dev/null || true`

// currentSystemScript prints where /run/current-system points, if
// anywhere.
const currentSystemScript = `if [ -e /run/current-system ]; then readlink -f /run/current-system; fi`

// bootScript makes $1 the system profile's generation and the boot
// default.
const bootScript = `set -eu
new="$1"
nix-env -p /nix/var/nix/profiles/system --set "$new"
"$new/bin/switch-to-configuration" boot
`

// restoreScript puts back the recorded previous system after a failure
// past the dead-man switch: $1 was running, $2 was the profile's system.
const restoreScript = `prev="$1"
prevProfile="$2"
rc=0
if [ -n "$prevProfile" ]; then
	nix-env -p /nix/var/nix/profiles/system --set "$prevProfile" || rc=1
	"$prevProfile/bin/switch-to-configuration" boot || rc=1
fi
if [ -n "$prev" ]; then
	"$prev/bin/switch-to-configuration" test || rc=1
fi
exit $rc
`
