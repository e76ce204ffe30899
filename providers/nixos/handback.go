package nixos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// handBackWithin bounds the wait for a machine to go down after it was
// told to reboot into its network installer.
const handBackWithin = 5 * time.Minute

// deleteHostKey forgets the host key; when the member is replaced (a new
// installer session: a new temporary key, --replace), it also hands the
// machine back to its installer: the installation record that sends it
// to its disk is removed, and the machine, reached with the key recorded
// for it, is rebooted, so that it boots the installer from the network
// and presents the new temporary key to the create that follows.
func deleteHostKey(ctx context.Context, op *sdk.Op, prior sdk.State[hostKeyInputs, hostKeyOutputs]) error {
	if !op.Replacing || !prior.HasOutputs {
		return forgetHostKey(ctx, op, prior)
	}
	removeRecord := func() error {
		if p := prior.Inputs.BootInstalled; p != "" {
			if err := bootentry.RemoveInstalled(p); err != nil {
				return err
			}
			op.Logf("removed %s: the boot server sends %s to its network boot entry (the installer) from its next boot on", p, prior.Inputs.Address)
		}
		return nil
	}
	t := prior.Inputs.target(prior.Outputs.HostPublicKey)
	c, err := dialWithin(ctx, t, 30*time.Second)
	if err != nil {
		if err := removeRecord(); err != nil {
			return err
		}
		op.Logf("%s does not answer with host key %s (%v): power-cycle it so that it boots its installer; the new session waits for it", t.HostPort(), prior.Outputs.Fingerprint, err)
		return nil
	}
	// The reboot needs root: a login user without passwordless sudo is
	// refused before the record is removed.
	if err := checkRoot(ctx, c); err != nil {
		c.Close()
		return fmt.Errorf("hand %s back to its installer: %w; nothing was changed (the installation record stays)", t.HostPort(), err)
	}
	if err := removeRecord(); err != nil {
		c.Close()
		return err
	}
	bootID, err := readBootID(ctx, c)
	if err != nil {
		c.Close()
		return fmt.Errorf("hand %s back to its installer: read the boot ID: %w", t.HostPort(), err)
	}
	op.Progress("rebooting "+t.HostPort()+" into its network installer", -1)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = c.Run(rctx, "reboot", rebootScript, nil)
	cancel()
	c.Close()
	if err != nil {
		return fmt.Errorf("hand %s back to its installer: start the reboot: %w", t.HostPort(), err)
	}
	if err := waitGone(ctx, t, bootID, handBackWithin); err != nil {
		return fmt.Errorf("hand %s back to its installer: %w", t.HostPort(), err)
	}
	op.Logf("%s is rebooting; it boots its installer from the network", t.HostPort())
	return nil
}

// waitGone waits until the host behind t no longer answers with its
// pinned key (it went down, or presents another key: its installer's).
// A host that answers from a new boot with the same key booted its disk
// again, which is an error: the installer would never come.
func waitGone(ctx context.Context, t remote.Target, bootID string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		c, err := dialWithin(ctx, t, 10*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("it still answered %s after the reboot began", within)
			}
			// Down, or another key: gone either way.
			return nil
		}
		id, err := readBootID(ctx, c)
		c.Close()
		if err == nil && id != bootID {
			return errors.New("it came back from the reboot with the same host key: it booted its disk again, not the installer (is network boot first in its boot order, and does the boot server serve its entry?)")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("it still answered %s after the reboot began", within)
		case <-time.After(time.Second):
		}
	}
}
