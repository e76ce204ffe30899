#!/bin/sh
# Landscaper's activation supervisor: the dead-man switch on the target.
# Started detached from its driver's session (a transient systemd unit,
# or a process in its own session) with its directory as $1, which holds
# "params" (new, prev, activation_timeout, confirm_timeout, check_timeout).
# It activates $new with `switch-to-configuration test`, then waits for the
# driver to create "reached" within confirm_timeout seconds, once it made
# a new connection (the deployer: a new SSH login; the pull agent: a new
# request to its server), then for "confirm" within check_timeout seconds
# (while the health checks run). Anything else -- a failed or hung
# activation, no new connection, no confirmation, an "abort" -- re-activates
# $prev with its own switch-to-configuration. Progress is in "status", one
# line written at once (a reader takes only a whole line).
#
# It holds /run/landscaper/lock (fd 9) as long as it lives, and
# "activating.lock" (fd 7) while it activates: a reader waiting for the
# status to change blocks on the one that is let go then (flock), instead
# of looking again and again. Neither goes to switch-to-configuration, so
# nothing it starts holds them on.
dir="$1"
. "$dir/params"
set_status() {
	printf '%s\n' "$*" >"$dir/status"
}
exec 9>/run/landscaper/lock
if ! flock -n 9; then
	set_status "busy"
	exit 1
fi
exec 7>"$dir/activating.lock"
flock 7
rollback() {
	if [ -z "$prev" ] || [ ! -x "$prev/bin/switch-to-configuration" ]; then
		set_status "failed $1 no-previous"
		exit 1
	fi
	set_status "rolling-back $1"
	timeout -k 10 "$activation_timeout" "$prev/bin/switch-to-configuration" test >"$dir/rollback.log" 2>&1 7>&- 9>&-
	set_status "rolled-back $1 $?"
	exit 1
}
# wait_for FILE SECONDS: 0 once FILE exists, 1 after SECONDS; rolls back
# at once on "abort". It sleeps in one timer, whose process ID is in
# "timer": the driver creates its files, then ends the timer, so nothing
# looks again and again. A timer ended by anything else is taken as the
# time having run out (the safe side: a rollback).
wait_for() {
	if [ -e "$dir/abort" ]; then rollback abort; fi
	if [ -e "$dir/$1" ]; then return 0; fi
	sleep "$2" 7>&- 9>&- &
	timer=$!
	printf '%s\n' "$timer" >"$dir/timer"
	# The driver may have come between the look above and the timer.
	if [ -e "$dir/abort" ] || [ -e "$dir/$1" ]; then kill "$timer" 2>/dev/null; fi
	wait "$timer"
	: >"$dir/timer"
	if [ -e "$dir/abort" ]; then rollback abort; fi
	[ -e "$dir/$1" ]
}
set_status activating
timeout -k 10 "$activation_timeout" "$new/bin/switch-to-configuration" test >"$dir/activate.log" 2>&1 7>&- 9>&-
rc=$?
if [ "$rc" -ne 0 ]; then rollback "exit-$rc"; fi
set_status activated
exec 7>&-
wait_for reached "$confirm_timeout" || rollback no-new-connection
set_status reached
wait_for confirm "$check_timeout" || rollback not-confirmed
set_status confirmed
