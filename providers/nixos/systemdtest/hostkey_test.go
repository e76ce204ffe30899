package systemdtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// TestHostKeyRotationReloadsSSHD: nixos.host-key's rotation reloads sshd
// through systemd (ssh.service's reload: the same main process, re-read
// configuration) and an SSH connection opened before it keeps working.
func TestHostKeyRotationReloadsSSHD(t *testing.T) {
	t.Parallel()
	installer := testhost.NewKeyPair(t)
	tg := newTarget(t, installer.Private)
	existing := tg.dial(t, "root", installer.Public)
	mainPID := tg.exec(t, "systemctl show --property=MainPID --value ssh.service")
	if mainPID == "" || mainPID == "0" {
		t.Fatalf("ssh.service has no main process (%q)", mainPID)
	}

	in := tg.conn("root")
	in["expectedHostKey"] = installer.Public
	in["timeout"] = 60
	out, err := tg.create(t, tg.provider, hostKeyType, in)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	rotated, _ := out["hostPublicKey"].(string)
	if rotated == "" || rotated == installer.Public {
		t.Fatalf("hostPublicKey %q: want a new key", rotated)
	}
	if got := tg.c.HostPublicKey(t); got != rotated {
		t.Errorf("the container's key on disk is %q, the output %q", got, rotated)
	}
	journal := tg.exec(t, "journalctl --no-pager -o cat -u ssh.service")
	contains(t, "ssh.service's journal", journal, "Reloading ssh.service", "Reloaded ssh.service", "Received SIGHUP; restarting.")
	if got := tg.exec(t, "systemctl show --property=MainPID --value ssh.service"); got != mainPID {
		t.Errorf("sshd's main process was %s and is %s: restarted, not reloaded", mainPID, got)
	}
	if s := tg.exec(t, "systemctl is-active ssh.service || true"); s != "active" {
		t.Errorf("ssh.service is %q after the rotation", s)
	}

	// The connection from before the rotation still runs commands.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := existing.Run(ctx, "check the old connection", "echo alive", nil)
	if err != nil || strings.TrimSpace(res.Stdout) != "alive" {
		t.Errorf("the connection opened before the rotation: %q, %v", res.Stdout, err)
	}
	// A new one is pinned to the new key.
	fresh := tg.dial(t, "root", rotated)
	if res, err := fresh.Run(ctx, "check a new connection", "echo fresh", nil); err != nil || strings.TrimSpace(res.Stdout) != "fresh" {
		t.Errorf("a new connection pinned to the rotated key: %q, %v", res.Stdout, err)
	}
}
