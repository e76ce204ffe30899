package nixos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
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
	BootRecord      string  `json:"bootRecord"`
	BootInstalled   string  `json:"bootInstalledRecord"`
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
		sdk.String("bootRecord", "The fetch record of the network boot entry that carried expectedHostKey's private half (pxe-nbp.entry's fetchRecord), on this machine. When set, a host presenting the expected key is trusted only if the record shows that the archive went to one client, the one that fetched the machine's script first, and nobody else asked for it; otherwise the resource fails, naming the addresses and times, before any credential is offered. With rotate, the record is sealed once the host is logged in to, so the boot server serves the archive to nobody after that. Empty: no check.").Default(""),
		sdk.String("bootInstalledRecord", "The machine's installation record in the boot directory, on this machine (pxe-nbp.entry's installedRecord, as given to nixos.install). When this member is replaced (a new installer session, e.g. landscaper apply --replace on the temporary key's member), the record is removed and the machine, reached with the host key recorded here, is rebooted, so that it boots its installer from the network; the new member then waits for it. Empty: a replacement only forgets the old key.").Default(""),
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
		Delete:   deleteHostKey,
		Read:     readHostKey,
	}
}

func validateHostKey(in hostKeyInputs, unknown []resource.Path) resource.Diagnostics {
	diags := validateConnection(in.connection, unknown)
	diags = append(diags, validatePublicKey("expectedHostKey", in.ExpectedHostKey, unknown)...)
	diags = append(diags, validateSeconds("timeout", in.Timeout, unknown)...)
	if !resource.Covered(resource.AttrPath("bootRecord"), unknown) && in.BootRecord != "" && !filepath.IsAbs(in.BootRecord) {
		diags = append(diags, resource.Error(resource.AttrPath("bootRecord"), "invalid path", "bootRecord must be an absolute path (pxe-nbp.entry's fetchRecord), got %q", in.BootRecord))
	}
	if !resource.Covered(resource.AttrPath("bootInstalledRecord"), unknown) && in.BootInstalled != "" && !cleanAbs(in.BootInstalled) {
		diags = append(diags, resource.Error(resource.AttrPath("bootInstalledRecord"), "invalid path", "bootInstalledRecord must be an absolute path (pxe-nbp.entry's installedRecord), got %q", in.BootInstalled))
	}
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
	# NixOS's sshd.service has no ExecReload: SIGHUP to its main process
	# is what a reload would do.
	systemctl reload sshd.service 2>/dev/null || systemctl reload ssh.service 2>/dev/null ||
		systemctl is-active --quiet sshd.socket ||
		{ systemctl is-active --quiet sshd.service && systemctl kill --signal=HUP --kill-who=main sshd.service; } ||
		{ systemctl is-active --quiet ssh.service && systemctl kill --signal=HUP --kill-who=main ssh.service; } ||
		{ echo "cannot reload sshd: neither sshd.service nor ssh.service reloads or runs" >&2; exit 1; }
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
	var verdict *bootVerdict
	if in.BootRecord != "" {
		// A sealed archive is served to nobody: no installer can get the
		// temporary key from it any more, so waiting would be in vain.
		at, sealed, err := bootentry.SealedAt(in.BootRecord)
		if err != nil {
			return hostKeyOutputs{}, fmt.Errorf("read the boot server's fetch record: %w", err)
		}
		if sealed {
			return hostKeyOutputs{}, fmt.Errorf("the boot archive that carries expectedHostKey (%s) was sealed at %s, when a host key that it carried was replaced: the boot server serves it to nobody, so no installer can present that key again; start a new installer session with a new temporary key (landscaper apply --replace on the member that makes it, <machine>.installerHostKey with landscaper.modules.machines, as in examples/install)", in.BootRecord, at.UTC().Format(time.RFC3339))
		}
		// Judged when the host presents the key, before the login key is
		// offered: a key that may be in other hands gets no credential.
		t.Vet = func() error {
			v, err := judgeBootRecord(ctx, in.BootRecord, in.Address)
			if err != nil {
				return err
			}
			verdict = v
			return v.err()
		}
	}
	op.Progress(fmt.Sprintf("waiting for SSH on %s (up to %s)", t.HostPort(), seconds(in.Timeout)), -1)
	wctx, cancel := context.WithTimeout(ctx, seconds(in.Timeout))
	c, err := remote.WaitFor(wctx, t, 30*time.Second, remote.DefaultBackoff, func(tries int, err error) {
		if tries == 1 || tries%10 == 0 {
			op.Logf("%s not answering yet (attempt %d): %v", t.HostPort(), tries, err)
		}
	})
	cancel()
	if err != nil {
		var veto *remote.VetoError
		if in.BootRecord != "" && !errors.As(err, &veto) {
			// A machine that never comes up may have been refused its
			// archive: say what the boot server saw.
			if v, rerr := judgeBootRecord(ctx, in.BootRecord, in.Address); rerr == nil {
				return hostKeyOutputs{}, fmt.Errorf("%w; the boot server's record %s: %s", err, in.BootRecord, v.history())
			}
		}
		return hostKeyOutputs{}, err
	}
	defer c.Close()
	op.Logf("%s presents the expected host key %s", t.HostPort(), remote.Fingerprint(expected))
	if verdict != nil {
		op.Logf("the boot server's record %s: %s", in.BootRecord, verdict.history())
	}
	if !in.Rotate {
		return hostKeyOutputs{HostPublicKey: expected, Fingerprint: remote.Fingerprint(expected)}, nil
	}
	// Rotating needs root: a login user without passwordless sudo is
	// refused now, before the seal, while nothing has changed.
	if err := checkRoot(ctx, c); err != nil {
		unsealed := ""
		if in.BootRecord != "" {
			unsealed = ", and the boot archive was not sealed"
		}
		return hostKeyOutputs{}, fmt.Errorf("rotate the host key at %s: %w; nothing was changed on the host%s", in.HostKeyPath, err, unsealed)
	}
	if in.BootRecord != "" {
		// Sealed before the key changes: a seal that cannot be written
		// stops the apply while the host is still as it was. The
		// installer has its archive; nobody needs it any more.
		if err := bootentry.Seal(in.BootRecord, time.Now()); err != nil {
			return hostKeyOutputs{}, fmt.Errorf("seal the boot archive that carried the temporary host key: %w", err)
		}
		op.Logf("sealed %s: the boot server serves the archive with the temporary host key to nobody from now on", in.BootRecord)
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

// bootVerdict is what a boot entry's fetch record says about who may hold
// the archive, and so the temporary host key, it carried.
type bootVerdict struct {
	record *bootentry.FetchRecord
	// problems are why the key is not to be trusted.
	problems []string
	// events are what happened, by address, for messages.
	events []string
}

// judgeBootRecord reads the fetch record in dir. The key is not trusted
// when no client fetched the machine's script or the archive was never
// served (yet a host presents the key), when anyone but the client that
// fetched the script first got or asked for the archive, when the record
// is full, or when that client is not at address (the host SSH is about
// to reach) though address has an IP address of its family.
func judgeBootRecord(ctx context.Context, dir, address string) (*bootVerdict, error) {
	r, err := bootentry.ReadFetchRecord(dir)
	if err != nil {
		return nil, fmt.Errorf("read the boot server's fetch record: %w", err)
	}
	v := &bootVerdict{record: r}
	at := func(ev bootentry.FetchEvent) string {
		return fmt.Sprintf("at %s (%s)", ev.Time.UTC().Format(time.RFC3339Nano), ev.Protocol)
	}
	if r.Claim == nil {
		v.problems = append(v.problems, "no client fetched the machine's script, so the boot server served the archive to nobody, yet a host presents the key it carried")
	} else {
		v.events = append(v.events, fmt.Sprintf("%s fetched the machine's script first, %s", r.Claim.Address, at(*r.Claim)))
	}
	served := 0
	// One problem per address and kind, however often it asked.
	noted := map[string]bool{}
	problem := func(key, msg string) {
		if !noted[key] {
			noted[key] = true
			v.problems = append(v.problems, msg)
		}
	}
	for _, ev := range r.Events {
		switch ev.Kind {
		case bootentry.EventScript:
			v.events = append(v.events, fmt.Sprintf("%s fetched the script too, %s", ev.Address, at(ev)))
		case bootentry.EventServed:
			v.events = append(v.events, fmt.Sprintf("%s got the archive %s", ev.Address, at(ev)))
			if r.Claim != nil && ev.Address == r.Claim.Address {
				served++
				continue
			}
			problem("served "+ev.Address, fmt.Sprintf("the archive was served to %s %s, which is not the client that fetched the script first", ev.Address, at(ev)))
		case bootentry.EventRefused:
			v.events = append(v.events, fmt.Sprintf("%s was refused the archive %s: %s", ev.Address, at(ev), ev.Reason))
			if r.Claim == nil || ev.Address != r.Claim.Address {
				problem("refused "+ev.Address, fmt.Sprintf("%s asked for the archive too, %s, and was refused: a second client wants it, and it may be the machine", ev.Address, at(ev)))
			}
		}
	}
	if r.Claim != nil && served == 0 {
		v.problems = append(v.problems, fmt.Sprintf("the boot server never served the archive to %s, yet a host presents the key it carried", r.Claim.Address))
	}
	if r.Full {
		v.problems = append(v.problems, "the record is full: some requests for the archive went unrecorded")
	}
	if r.Sealed {
		v.events = append(v.events, "sealed at "+r.SealedAt.UTC().Format(time.RFC3339Nano))
	}
	if r.Claim != nil {
		if p := addressProblem(ctx, r.Claim.Address, address); p != "" {
			v.problems = append(v.problems, p)
		}
	}
	return v, nil
}

// addressProblem says why claimant, the client that got the archive, is
// not the host at address; "" when it is, or when address has no IP
// address of claimant's family to compare with (an installer on IPv6
// that booted over IPv4, say).
func addressProblem(ctx context.Context, claimant, address string) string {
	c, err := netip.ParseAddr(claimant)
	if err != nil {
		return fmt.Sprintf("the client that got the archive has no IP address (%q)", claimant)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(lctx, "ip", address)
	if err != nil {
		return ""
	}
	var same []string
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip == c {
			return ""
		}
		if ip.Is4() == c.Is4() {
			same = append(same, ip.String())
		}
	}
	if len(same) == 0 {
		return ""
	}
	return fmt.Sprintf("the archive went to %s, but the host is reached at %s (%s): another machine took it, or the installer's address is not the one it booted from", claimant, address, strings.Join(same, ", "))
}

// err is nil when the key may be trusted, else an error naming what
// happened.
func (v *bootVerdict) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return fmt.Errorf("the boot archive that carried the expected host key may be in other hands: %s (the record %s: %s); if these addresses are not all the machine, make a new temporary key and entry version and boot the machine again",
		strings.Join(v.problems, "; "), v.record.Dir, v.history())
}

// maxHistory bounds how many events a message lists.
const maxHistory = 20

// history is what the record says happened: its first maxHistory events.
func (v *bootVerdict) history() string {
	switch n := len(v.events); {
	case n == 0:
		return "nothing recorded"
	case n > maxHistory:
		return strings.Join(v.events[:maxHistory], "; ") + fmt.Sprintf("; and %d more events", n-maxHistory)
	}
	return strings.Join(v.events, "; ")
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
