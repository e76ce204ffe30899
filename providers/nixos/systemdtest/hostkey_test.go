package systemdtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/internal/testhost"
)

// TestHostKeyRotationReloadsSSHD: nixos.host-key's rotation reloads sshd
// through systemd, keeping its main process, and an SSH connection opened
// before it keeps working; a new one is pinned to the new key. First with
// Debian's ssh.service (which reloads), then with its ExecReload taken
// away, as NixOS's sshd.service has none: the provider sends SIGHUP to the
// unit's main process through systemctl kill. Each rotation starts from
// the key the one before made.
func TestHostKeyRotationReloadsSSHD(t *testing.T) {
	t.Parallel()
	installer := testhost.NewKeyPair(t)
	tg := newTarget(t, installer.Private)
	current := installer.Public
	for _, tc := range []struct {
		name string
		// setup runs on the target before the rotation.
		setup string
		// journal is what ssh.service's journal must say about the
		// rotation, and notJournal what it must not.
		journal, notJournal []string
	}{
		{name: "ssh.service reloads", journal: []string{"Reloading ssh.service", "Reloaded ssh.service", "Received SIGHUP; restarting."}},
		{name: "no ExecReload, as NixOS's sshd.service",
			setup: `mkdir -p /etc/systemd/system/ssh.service.d
printf '[Service]\nExecReload=\n' >/etc/systemd/system/ssh.service.d/no-reload.conf
systemctl daemon-reload`,
			journal: []string{"Received SIGHUP; restarting."}, notJournal: []string{"Reloading ssh.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != "" {
				tg.exec(t, tc.setup)
			}
			cursor := tg.exec(t, "journalctl -n 0 --show-cursor | sed -n 's/^-- cursor: //p'")
			if cursor == "" {
				t.Fatal("journalctl shows no cursor")
			}
			existing := tg.dial(t, "root", current)
			mainPID := tg.exec(t, "systemctl show --property=MainPID --value ssh.service")
			if mainPID == "" || mainPID == "0" {
				t.Fatalf("ssh.service has no main process (%q)", mainPID)
			}

			in := tg.conn("root")
			in["expectedHostKey"] = current
			in["timeout"] = 60
			out, err := tg.create(t, tg.provider, hostKeyType, in)
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			rotated, _ := out["hostPublicKey"].(string)
			if rotated == "" || rotated == current {
				t.Fatalf("hostPublicKey %q: want a new key", rotated)
			}
			if got := tg.c.HostPublicKey(t); got != rotated {
				t.Errorf("the container's key on disk is %q, the output %q", got, rotated)
			}
			journal := tg.exec(t, "journalctl --no-pager -o cat -u ssh.service --after-cursor='"+cursor+"'")
			contains(t, "ssh.service's journal since the rotation", journal, tc.journal...)
			for _, n := range tc.notJournal {
				if strings.Contains(journal, n) {
					t.Errorf("ssh.service's journal since the rotation says %q:\n%s", n, journal)
				}
			}
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
			fresh := tg.dial(t, "root", rotated)
			if res, err := fresh.Run(ctx, "check a new connection", "echo fresh", nil); err != nil || strings.TrimSpace(res.Stdout) != "fresh" {
				t.Errorf("a new connection pinned to the rotated key: %q, %v", res.Stdout, err)
			}
			current = rotated
		})
	}
}
