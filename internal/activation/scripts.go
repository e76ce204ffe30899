package activation

import _ "embed"

// The scripts an activation runs on the host, as root. Each takes its
// arguments as $1, $2, ... Every program a script starts costs the host
// about a millisecond of CPU, and a fleet apply runs them on every host:
// what the shell can do itself (reading and writing files, resolving
// links, waiting on a lock rather than looking again) it does.

// supervisorScript is the dead-man switch run on the host.
//
//go:embed supervisor.sh
var supervisorScript string

// probeFunc defines probe NEW [preflight], which reports what the host
// runs and, with preflight, who commands run as (uid=, so that the
// deployer learns it without a command of its own), whether the host
// holds NEW (may be empty) and whether anything stands in the way of an
// activation, as key=value lines. A link that is not there reads as "".
// Links are resolved with the shell's own cd -P and compared with test
// -ef where it can: each program started costs the host about a
// millisecond of CPU, and a fleet apply runs this on every host.
const probeFunc = `probe() {
	new="$1"
	if [ "$2" = preflight ]; then
		# The effective user ID, as id -u prints it, from this shell's
		# own status where /proc has it.
		uid=
		while read -r key real effective rest; do
			if [ "$key" = Uid: ]; then uid=$effective; break; fi
		done 2>/dev/null </proc/self/status
		echo "uid=${uid:-$(id -u)}"
	fi
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
	[ "$2" = preflight ] || return 0
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl list-units --state=failed --no-legend --plain 2>/dev/null | while read -r unit rest; do echo "failed=$unit"; done
	fi
	# A lock is held when flock cannot take it at once; the lock taken
	# here is let go as soon as the descriptor closes.
	for lock in /run/landscaper/lock /run/nixos/switch-to-configuration.lock; do
		if [ -e "$lock" ] && ! { flock -n 8; } 8<"$lock" 2>/dev/null; then echo "busy=$lock"; fi
	done
	return 0
}
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
`

// probeScript runs probe with $1 (the new system, may be empty) and $2
// ("preflight" or empty).
const probeScript = probeFunc + `probe "$1" "${2-}"
`

// awaitFunc defines await_status FILE PENDING..., which waits on the host,
// up to about 20 s, while the status file holds one of PENDING or a
// rollback is in progress, and prints the status then. It does not look
// again and again: the supervisor holds activating.lock while it
// activates and /run/landscaper/lock as long as it lives, so the wait is
// one flock on the lock it lets go when the status moves on (the driver
// learns of the change at once, at the cost of one program). Only before
// the supervisor wrote any status does it look every 50 ms. The status
// is taken only as a whole line (the supervisor writes it in place). A
// pending status while nobody holds /run/landscaper/lock means the
// supervisor is gone without a result (killed, or it could not run):
// that prints "gone <status>"; an absent status counts only once the
// supervisor was written 10 s ago (it may not have taken the lock yet).
const awaitFunc = `read_status() {
	s=
	{ read -r s <"$f" || s=; } 2>/dev/null
}
pending() {
	for p in "$@"; do if [ "$s" = "$p" ]; then return 0; fi; done
	case "$s" in rolling-back*) return 0 ;; esac
	return 1
}
# unheld LOCK: nobody holds LOCK (taken here for a moment).
unheld() {
	{ flock -n 8; } 8<"$1" 2>/dev/null
}
await_status() {
	f="$1"
	shift
	dir=${f%/*}
	i=0
	while [ "$i" -lt 400 ]; do
		read_status
		pending "$@" || break
		lock=/run/landscaper/lock
		if [ "$s" = activating ]; then lock="$dir/activating.lock"; fi
		if [ -n "$s" ] && [ -e "$lock" ]; then
			if { flock -w 10 8; } 8<"$lock" 2>/dev/null; then
				read_status
				if pending "$@" && { [ "$lock" = /run/landscaper/lock ] || unheld /run/landscaper/lock; }; then
					s="gone $s"
					break
				fi
				i=$((i + 20))
			else
				i=$((i + 200))
			fi
			continue
		fi
		if [ $((i % 20)) -eq 19 ] && [ $(($(date +%s) - $(stat -c %Y "$dir/supervisor.sh" 2>/dev/null || date +%s))) -ge 10 ] && unheld /run/landscaper/lock; then
			read_status
			if pending "$@"; then s="gone $s"; fi
			break
		fi
		sleep 0.05
		i=$((i + 1))
	done
	printf '%s\n' "$s"
}
`

// awaitStatusScript runs await_status with its arguments: the status
// file, then the pending statuses.
const awaitStatusScript = awaitFunc + `await_status "$@"
`

// startScript writes the params ($2) and the supervisor ($3) into the
// activation's directory $1, starts the supervisor detached from this
// session (an SSH session, or the agent), prints "started", and then
// waits for the activation's outcome as await_status does: one script
// for what took two round trips. A transient unit gets the manager's
// environment, not the session's: on NixOS its PATH holds only systemd's
// own bin directory (no coreutils, no flock), so the session's PATH, in
// which the pre-flight found what the supervisor runs, is passed on. The
// directories are made under umask 077: /run/landscaper and all in it are
// root's only.
const startScript = awaitFunc + `set -eu
dir="$1"
umask 077
mkdir -p "$dir"
printf '%s\n' "$2" >"$dir/params"
printf '%s' "$3" >"$dir/supervisor.sh"
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
	systemd-run --unit="landscaper-activate-${dir##*/}" --collect --no-ask-password --quiet \
		--service-type=exec -p KillMode=process --setenv=PATH="$PATH" /bin/sh "$dir/supervisor.sh" "$dir"
else
	setsid -f /bin/sh "$dir/supervisor.sh" "$dir" </dev/null >"$dir/supervisor.log" 2>&1
fi
echo started
set +eu
await_status "$dir/status" activating ''
`

// startedLine is what startScript prints once the supervisor runs.
const startedLine = "started"

// touchFunc defines touch_all DIR NAMES, which creates the files named
// in NAMES (space-separated) in DIR, in order, with the shell's own
// redirection: the driver's messages to the supervisor. Then it ends the
// timer the supervisor waits on (its process ID in DIR/timer, if any),
// so that the supervisor looks at once.
const touchFunc = `touch_all() {
	for n in $2; do
		: >"$1/$n" || exit 1
	done
	# Only a whole line holding a process ID: the supervisor may be
	# writing it, or have emptied it once its timer ended.
	if { read -r t <"$1/timer"; } 2>/dev/null; then
		case "$t" in
		[1-9]*[!0-9]* | [!1-9]* | '') ;;
		*) kill "$t" 2>/dev/null ;;
		esac
	fi
	return 0
}
`

// touchScript creates the files $2 (space-separated) in the directory $1.
const touchScript = touchFunc + `touch_all "$1" "$2"
`

// touchAwaitScript creates the files $2 in the directory $1, prints
// "touched", then waits while the status is one of $4...
// (await_status): a message to the supervisor and its answer in one
// round trip. With a system in $3, once the status is "confirmed", it
// prints "booting" and makes that system the boot default as bootScript
// does, in the same round trip again.
const touchAwaitScript = touchFunc + awaitFunc + probeFunc + bootFunc + `dir="$1"
boot="$3"
touch_all "$dir" "$2"
shift 3
echo touched
await_status "$dir/status" "$@"
if [ -n "$boot" ] && [ "$s" = confirmed ]; then
	echo booting
	boot_system "$boot"
fi
`

// touchedLine is what touchAwaitScript prints once the files are there,
// and bootingLine what it prints before it sets the boot default.
const (
	touchedLine = "touched"
	bootingLine = "booting"
)

// activationLogScript prints the tail of switch-to-configuration's output
// in the activation's directory $1.
const activationLogScript = `tail -n 20 "$1/activate.log" 2>/dev/null || true`

// currentSystemScript prints where /run/current-system points, if
// anywhere.
const currentSystemScript = `if [ -e /run/current-system ]; then readlink -f /run/current-system; fi`

// bootFunc defines boot_system NEW, which makes NEW the system profile's
// generation and the boot default, then reports the host as probe does
// (not preflight): the driver reads the result in the same round trip.
// What nix-env and switch-to-configuration print goes to standard error,
// so that standard output is the probe's alone. A failure ends the
// script with the failed command's exit status.
const bootFunc = `boot_system() {
	nix-env -p /nix/var/nix/profiles/system --set "$1" >&2 || exit
	"$1/bin/switch-to-configuration" boot >&2 || exit
	probe "$1" ""
}
`

// bootScript makes $1 the boot default (boot_system).
const bootScript = probeFunc + bootFunc + `boot_system "$1"
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
