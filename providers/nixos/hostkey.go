package nixos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

type hostKeyInputs struct {
	connection
	ExpectedHostKey string  `json:"expectedHostKey"`
	Rotate          bool    `json:"rotate"`
	HostKeyPath     string  `json:"hostKeyPath"`
	Timeout         float64 `json:"timeout"`
}

type hostKeyOutputs struct {
	HostPublicKey string `json:"hostPublicKey"`
	Fingerprint   string `json:"fingerprint"`
}

func hostKeyType() *sdk.Type[hostKeyInputs, hostKeyOutputs] {
	inputs := connectionAttrs()
	for i := range inputs {
		// Another host, port or login is another resource.
		if inputs[i].Name != "privateKey" {
			inputs[i] = inputs[i].ForceNew()
		}
	}
	inputs = append(inputs,
		sdk.String("expectedHostKey", `The public host key the host must present now ("ssh-ed25519 AAAA..."), e.g. the installer's temporary key. A host presenting any other key is refused before any credential is offered.`).Required().ForceNew(),
		sdk.Bool("rotate", "Replace the host key by a new ed25519 key generated on the target (its private part never leaves the host), reload sshd and check the host presents it.").Default(true).ForceNew(),
		sdk.String("hostKeyPath", "Where sshd reads the ed25519 host key on the target; the public key goes next to it with .pub added.").Default("/etc/ssh/ssh_host_ed25519_key").ForceNew(),
		sdk.Number("timeout", "Seconds to wait for the host to answer SSH (with backoff between attempts).").Default(600),
	)
	return &sdk.Type[hostKeyInputs, hostKeyOutputs]{
		Description: "Waits for a new server's SSH, checks it presents the expected host key, and rotates that key on the target.",
		Inputs:      inputs,
		Outputs: []sdk.Attr{
			sdk.String("hostPublicKey", `The host key the host presents now, "ssh-ed25519 AAAA..." (the new one when rotated); pin it in nixos.system's hostPublicKey.`),
			sdk.String("fingerprint", `SHA256 fingerprint of hostPublicKey.`),
		},
		Validate: validateHostKey,
		Create:   createHostKey,
		Update:   updateHostKey,
		Delete:   forgetHostKey,
		Read:     readHostKey,
	}
}

func validateHostKey(in hostKeyInputs, unknown []resource.Path) resource.Diagnostics {
	diags := validateConnection(in.connection, unknown)
	diags = append(diags, validatePublicKey("expectedHostKey", in.ExpectedHostKey, unknown)...)
	diags = append(diags, validateSeconds("timeout", in.Timeout, unknown)...)
	if !resource.Covered(resource.AttrPath("hostKeyPath"), unknown) &&
		(!path.IsAbs(in.HostKeyPath) || path.Clean(in.HostKeyPath) != in.HostKeyPath || strings.ContainsAny(in.HostKeyPath, "\x00\n")) {
		diags = append(diags, resource.Error(resource.AttrPath("hostKeyPath"), "invalid path", "hostKeyPath must be a clean absolute path, got %q", in.HostKeyPath))
	}
	return diags
}

// rotateScript makes a new ed25519 host key at $1 (private part 0600,
// never printed), makes sshd use it and prints the new public key.
const rotateScript = `set -eu
key="$1"
umask 077
mkdir -p "$(dirname "$key")"
rm -f "$key.landscaper-new" "$key.landscaper-new.pub"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$key.landscaper-new" </dev/null >/dev/null
chmod 0600 "$key.landscaper-new"
chmod 0644 "$key.landscaper-new.pub"
mv -f "$key.landscaper-new.pub" "$key.pub"
mv -f "$key.landscaper-new" "$key"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl reload sshd.service 2>/dev/null || systemctl reload ssh.service 2>/dev/null ||
		systemctl is-active --quiet sshd.socket || { echo "cannot reload sshd: neither sshd.service nor ssh.service reloads" >&2; exit 1; }
elif [ -f /run/sshd.pid ]; then
	kill -HUP "$(cat /run/sshd.pid)"
else
	echo "cannot reload sshd: no systemd and no /run/sshd.pid" >&2
	exit 1
fi
cat "$key.pub"
`

func createHostKey(ctx context.Context, op *sdk.Op, in hostKeyInputs) (hostKeyOutputs, error) {
	expected, err := normalizeKey(in.ExpectedHostKey)
	if err != nil {
		return hostKeyOutputs{}, fmt.Errorf("expectedHostKey: %w", err)
	}
	t := in.target(expected)
	op.Progress(fmt.Sprintf("waiting for SSH on %s (up to %s)", t.HostPort(), seconds(in.Timeout)), -1)
	wctx, cancel := context.WithTimeout(ctx, seconds(in.Timeout))
	c, err := remote.WaitFor(wctx, t, 30*time.Second, remote.DefaultBackoff, func(tries int, err error) {
		if tries == 1 || tries%10 == 0 {
			op.Logf("%s not answering yet (attempt %d): %v", t.HostPort(), tries, err)
		}
	})
	cancel()
	if err != nil {
		return hostKeyOutputs{}, err
	}
	defer c.Close()
	op.Logf("%s presents the expected host key %s", t.HostPort(), remote.Fingerprint(expected))
	if !in.Rotate {
		return hostKeyOutputs{HostPublicKey: expected, Fingerprint: remote.Fingerprint(expected)}, nil
	}
	op.Progress("rotating the host key", -1)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := c.Run(rctx, "rotate host key", "set -- "+remote.Quote(in.HostKeyPath)+"\n"+rotateScript, nil)
	if err != nil {
		return hostKeyOutputs{}, fmt.Errorf("rotate the host key at %s: %w", in.HostKeyPath, err)
	}
	rotated, err := normalizeKey(res.Stdout)
	if err != nil {
		return hostKeyOutputs{}, fmt.Errorf("rotate the host key at %s: the new public key: %w", in.HostKeyPath, err)
	}
	if rotated == expected {
		return hostKeyOutputs{}, fmt.Errorf("rotate the host key at %s: the host still has the old key", in.HostKeyPath)
	}
	op.Logf("generated host key %s on %s; reloading sshd", remote.Fingerprint(rotated), t.HostPort())
	if err := confirmHostKey(ctx, in.target(rotated), expected, time.Minute); err != nil {
		return hostKeyOutputs{}, err
	}
	op.Logf("%s now presents host key %s", t.HostPort(), remote.Fingerprint(rotated))
	return hostKeyOutputs{HostPublicKey: rotated, Fingerprint: remote.Fingerprint(rotated)}, nil
}

// confirmHostKey dials t, pinned to the new key, over new connections until
// the host presents it. While sshd restarts it may still answer with the
// old key or not at all; any other key is refused at once.
func confirmHostKey(ctx context.Context, t remote.Target, old string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	oldKey, err := remote.ParsePublicKey(old)
	if err != nil {
		return err
	}
	wait := 100 * time.Millisecond
	for {
		c, err := remote.Dial(ctx, t)
		if err == nil {
			c.Close()
			return nil
		}
		var mismatch *remote.HostKeyMismatchError
		if errors.As(err, &mismatch) && !bytes.Equal(mismatch.GotKey.Marshal(), oldKey.Marshal()) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the host did not present its new host key %s within %s: %w", ssh.FingerprintSHA256(mustKey(t.HostKey)), within, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func mustKey(line string) ssh.PublicKey {
	k, _ := remote.ParsePublicKey(line)
	return k
}

// updateHostKey takes a new timeout: nothing on the host changes.
func updateHostKey(_ context.Context, _ *sdk.Op, prior sdk.State[hostKeyInputs, hostKeyOutputs], _ hostKeyInputs) (hostKeyOutputs, error) {
	return prior.Outputs, nil
}

// forgetHostKey leaves the host as it is.
func forgetHostKey(_ context.Context, op *sdk.Op, prior sdk.State[hostKeyInputs, hostKeyOutputs]) error {
	if prior.HasOutputs {
		op.Logf("forgetting host key %s of %s; the host keeps it", prior.Outputs.Fingerprint, prior.Inputs.Address)
	}
	return nil
}

// readHostKey connects, pinned to the recorded key: a host that presents
// another key no longer has this resource (a reinstalled server presents
// its installer's key again, and the plan waits for it anew).
func readHostKey(ctx context.Context, prior sdk.State[hostKeyInputs, hostKeyOutputs]) (hostKeyOutputs, bool, error) {
	if !prior.HasOutputs {
		return hostKeyOutputs{}, false, nil
	}
	t := prior.Inputs.target(prior.Outputs.HostPublicKey)
	c, err := dialWithin(ctx, t, 30*time.Second)
	var mismatch *remote.HostKeyMismatchError
	switch {
	case errors.As(err, &mismatch):
		return hostKeyOutputs{}, false, nil
	case err != nil:
		return hostKeyOutputs{}, false, fmt.Errorf("check the host key of %s: %w", t.HostPort(), err)
	}
	c.Close()
	return prior.Outputs, true, nil
}
