package nixos

// ActivationScripts are the shell scripts nixos.system runs on its
// target, exported for `landscaper agent`, which runs the same activation
// on its own host. They belong in a package of their own, with the rest
// of the activation; until it moves there (issue 13), the agent reads
// them here so that both drivers run one copy.
type ActivationScripts struct {
	// Supervisor is the dead-man switch (supervisor.sh): started with its
	// directory as $1, which holds "params"; it reports in "status" and
	// waits for "reached", then "confirm" (or "abort").
	Supervisor string
	// Start writes the supervisor (its stdin) and the params ($2) into
	// the directory $1 and starts it detached.
	Start string
	// Probe prints current=, profile=, booted=, present= (of $1),
	// reboot=, failed= and busy= lines.
	Probe string
	// Boot makes $1 the system profile's generation and the boot default.
	Boot string
	// Restore re-activates $1 and makes $2 the boot default again.
	Restore string
}

// Scripts returns the activation's scripts.
func Scripts() ActivationScripts {
	return ActivationScripts{Supervisor: supervisorScript, Start: startScript, Probe: probeScript, Boot: bootScript, Restore: restoreScript}
}

// ExitMeaning says what an exit status of switch-to-configuration means.
func ExitMeaning(code int) string { return exitMeaning(code) }
