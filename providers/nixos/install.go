package nixos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/nixos/remote"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// InstallerMarker is the file an installer image carries so that
// nixos.install knows it may wipe the machine's disks.
const InstallerMarker = "/etc/landscaper-installer"

// mountPoint is where the disk script mounts the new system's file systems.
const mountPoint = "/mnt"

type installInputs struct {
	connection
	HostPublicKey     string                     `json:"hostPublicKey"`
	Toplevel          string                     `json:"toplevel"`
	DiskoScript       string                     `json:"diskoScript"`
	ExtraFiles        map[string]json.RawMessage `json:"extraFiles"`
	KeepHostKey       bool                       `json:"keepHostKey"`
	HostKeyPath       string                     `json:"hostKeyPath"`
	DiskTimeout       float64                    `json:"diskTimeout"`
	CopyTimeout       float64                    `json:"copyTimeout"`
	BootloaderTimeout float64                    `json:"bootloaderTimeout"`
	RebootTimeout     float64                    `json:"rebootTimeout"`
	Sudo              *bool                      `json:"sudo"`
	BootInstalled     string                     `json:"bootInstalledRecord"`
}

type installOutputs struct {
	Toplevel      string `json:"toplevel"`
	InstalledAt   string `json:"installedAt"`
	DiskoScript   string `json:"diskoScript"`
	HostPublicKey string `json:"hostPublicKey"`
}

// installFile is one of extraFiles.
type installFile struct {
	Contents string `json:"contents"`
	Mode     string `json:"mode"`
}

func installType() *sdk.Type[installInputs, installOutputs] {
	inputs := connectionAttrs()
	for i := range inputs {
		// Another machine is another installation.
		if inputs[i].Name == "address" || inputs[i].Name == "port" {
			inputs[i] = inputs[i].ForceNew()
		}
	}
	files := sdk.Map("extraFiles", "object", `Files written into the installed system before its first boot: absolute path -> { contents; mode ? "0400"; }. Written over SSH under /mnt with their mode, never through the Nix store.`).
		Default(map[string]any{}).Sensitive()
	files.Attributes = []resource.Attribute{
		sdk.String("contents", "The file's contents.").Required().Sensitive().Attribute,
		sdk.String("mode", `Permission bits in octal, like "0400".`).Default("0400").Attribute,
	}
	inputs = append(inputs,
		sdk.String("hostPublicKey", `The host key the installer presents ("ssh-ed25519 AAAA...", e.g. nixos.host-key's hostPublicKey). Strict host key checking, before and after the reboot. Another key is another installer session, and so another installation.`).Required().ForceNew(),
		sdk.String("toplevel", "The system to install (config.system.build.toplevel). Its derivation is built before the apply. Changing it later does not install again: nixos.system updates an installed machine.").Required(),
		sdk.String("diskoScript", "A store path of an executable that partitions, formats and mounts the machine's disks under /mnt (disko's config.system.build.diskoScript). Changing it replaces the installation: the disks are erased.").Required().ForceNew(),
		files,
		sdk.Bool("keepHostKey", "Carry the host key the installer presents now (hostPublicKey's private half, at hostKeyPath) into the installed system, so the same key is pinned before and after the reboot.").Default(true),
		sdk.String("hostKeyPath", "Where the installer's sshd reads that host key, and where the installed system's sshd reads it.").Default("/etc/ssh/ssh_host_ed25519_key"),
		sdk.Number("diskTimeout", "Seconds the disk script may take.").Default(1200),
		sdk.Number("copyTimeout", "Seconds the copy of the system's closure may take.").Default(1800),
		sdk.Number("bootloaderTimeout", "Seconds the boot loader's installation may take.").Default(600),
		sdk.Number("rebootTimeout", "Seconds the machine may take to come back from its disk after the reboot.").Default(900),
		sdk.Bool("sudo", `Run commands, and nix copy's nix-daemon on the target, as root through "sudo -n" (passwordless sudo needed); by default when user is not "root". Without it the login user must be root: commands that would not run as root are refused before anything changes.`),
		sdk.String("bootInstalledRecord", "The machine's installation record in the boot directory, on this machine (pxe-nbp.entry's installedRecord). Written before the reboot, so the boot server sends the machine to its disk from then on although the network stays first in its boot order; removed when this installation is deleted or replaced (--replace), so the machine boots the installer again. Empty: the boot order alone must take the machine to its disk.").Default(""),
	)
	return &sdk.Type[installInputs, installOutputs]{
		Description: "A NixOS system installed on a machine's disks from a booted installer, over SSH: disks partitioned, closure copied, boot loader installed, then a reboot into the installed system, verified with the same pinned host key.",
		Inputs:      inputs,
		Outputs: []sdk.Attr{
			sdk.String("toplevel", "The system installed."),
			sdk.String("installedAt", "When the installation finished (RFC 3339, UTC)."),
			sdk.String("diskoScript", "The disk script that was run."),
			sdk.String("hostPublicKey", "The host key the installed machine presents (to pin in nixos.system)."),
		},
		Validate: validateInstall,
		Plan:     planInstall,
		Create:   install,
		Update: func(_ context.Context, op *sdk.Op, prior sdk.State[installInputs, installOutputs], in installInputs) (installOutputs, error) {
			// Only inputs that do not reach the machine changed (planInstall
			// keeps toplevel out of it): nothing is done on the machine.
			op.Logf("%s stays installed as it is; nixos.system updates its system", in.Address)
			out := prior.Outputs
			out.HostPublicKey = prior.Outputs.HostPublicKey
			return out, nil
		},
		Delete: func(_ context.Context, op *sdk.Op, prior sdk.State[installInputs, installOutputs]) error {
			if op.Replacing {
				// The create that follows writes the record again once
				// the machine is installed; until then it keeps booting
				// what it has (nixos.host-key's replacement is what hands
				// a machine back to its installer).
				op.Logf("installing %s again: its installation record stays until the new installation writes it", prior.Inputs.Address)
				return nil
			}
			if p := prior.Inputs.BootInstalled; p != "" {
				if err := bootentry.RemoveInstalled(p); err != nil {
					return err
				}
				op.Logf("removed %s: %s boots its network boot entry (the installer) again the next time it starts", p, prior.Inputs.Address)
			}
			op.Logf("forgetting the installation on %s; its disks are left as they are", prior.Inputs.Address)
			return nil
		},
		Read: readInstall,
	}
}

func validateInstall(in installInputs, unknown []resource.Path) resource.Diagnostics {
	known := func(name string) bool { return !resource.Covered(resource.AttrPath(name), unknown) }
	diags := validateConnection(in.connection, unknown)
	diags = append(diags, validatePublicKey("hostPublicKey", in.HostPublicKey, unknown)...)
	if known("toplevel") && !isStorePath(in.Toplevel) {
		diags = append(diags, resource.Error(resource.AttrPath("toplevel"), "invalid toplevel", "toplevel must be a store path such as /nix/store/...-nixos-system-..., got %q", in.Toplevel))
	}
	if known("diskoScript") && !isStorePathBelow(in.DiskoScript) {
		diags = append(diags, resource.Error(resource.AttrPath("diskoScript"), "invalid disk script", "diskoScript must be a store path of an executable (config.system.build.diskoScript), got %q", in.DiskoScript))
	}
	if known("hostKeyPath") && !cleanAbs(in.HostKeyPath) {
		diags = append(diags, resource.Error(resource.AttrPath("hostKeyPath"), "invalid path", "hostKeyPath must be a clean absolute path, got %q", in.HostKeyPath))
	}
	if known("extraFiles") {
		_, d := parseInstallFiles(in.ExtraFiles, unknown)
		diags = append(diags, d...)
	}
	if known("bootInstalledRecord") && in.BootInstalled != "" && !cleanAbs(in.BootInstalled) {
		diags = append(diags, resource.Error(resource.AttrPath("bootInstalledRecord"), "invalid path", "bootInstalledRecord must be an absolute path (pxe-nbp.entry's installedRecord), got %q", in.BootInstalled))
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"diskTimeout", in.DiskTimeout}, {"copyTimeout", in.CopyTimeout}, {"bootloaderTimeout", in.BootloaderTimeout}, {"rebootTimeout", in.RebootTimeout}} {
		diags = append(diags, validateSeconds(s.name, s.v, unknown)...)
	}
	return diags
}

// isStorePathBelow reports whether p is a store path or a file in one.
func isStorePathBelow(p string) bool {
	if !strings.HasPrefix(p, "/nix/store/") || path.Clean(p) != p || strings.ContainsAny(p, "\x00\n'\"$`\\ ") {
		return false
	}
	top, _, _ := strings.Cut(strings.TrimPrefix(p, "/nix/store/"), "/")
	return isStorePath("/nix/store/" + top)
}

// storePathOf is the store path p is in.
func storePathOf(p string) string {
	top, _, _ := strings.Cut(strings.TrimPrefix(p, "/nix/store/"), "/")
	return "/nix/store/" + top
}

func cleanAbs(p string) bool {
	return path.IsAbs(p) && path.Clean(p) == p && p != "/" && !strings.ContainsAny(p, "\x00\n")
}

// parseInstallFiles decodes extraFiles, checking paths and modes.
func parseInstallFiles(raw map[string]json.RawMessage, unknown []resource.Path) (map[string]installFile, resource.Diagnostics) {
	var diags resource.Diagnostics
	out := map[string]installFile{}
	for name, v := range raw {
		p := resource.AttrPath("extraFiles").Key(name)
		if !cleanAbs(name) {
			diags = append(diags, resource.Error(p, "invalid file path", "%q must be a clean absolute path", name))
			continue
		}
		if resource.Covered(p, unknown) {
			continue
		}
		f := installFile{Mode: "0400"}
		if err := json.Unmarshal(v, &f); err != nil {
			diags = append(diags, resource.Error(p, "invalid file", "want { contents; mode; }: %v", err))
			continue
		}
		if _, err := sdk.ParseFileMode(f.Mode); err != nil {
			diags = append(diags, resource.Error(p.Attr("mode"), "invalid file mode", "%v", err))
			continue
		}
		out[name] = f
	}
	return out, diags
}

// planInstall keeps a new toplevel from touching an installed machine (it
// is nixos.system's job) and says in words what replacing means.
func planInstall(ctx context.Context, p *sdk.Plan[installInputs, installOutputs]) {
	if p.Prior != nil && p.Prior.HasOutputs {
		keep := func(ps []resource.Path) []resource.Path {
			var out []resource.Path
			for _, q := range ps {
				if len(q) == 1 && q[0].Name == "toplevel" {
					continue
				}
				out = append(out, q)
			}
			return out
		}
		if p.Action == resource.ActionUpdate {
			p.Changed = keep(p.Changed)
			if len(p.Changed) == 0 {
				p.Action = resource.ActionNoop
				p.SetKnown(p.Prior.Outputs, "toplevel", "installedAt", "diskoScript", "hostPublicKey")
			}
		}
	}
	if p.Action == resource.ActionCreate || p.Action == resource.ActionReplace {
		detail := fmt.Sprintf("%s: the disk script partitions and formats the disks of the installer booted there, then the machine reboots into the installed system", p.Desired.Address)
		if p.Action == resource.ActionReplace && p.Prior != nil && !p.IsUnknown("hostPublicKey") && p.Desired.HostPublicKey == p.Prior.Inputs.HostPublicKey {
			// The same installer session: the machine runs its installed
			// system, which the pre-flight never wipes.
			detail += "; but the machine runs its installed system now, and nothing hands it back to its installer in this apply: the safety pre-flight will stop the replacement and the machine stays as it is, unless a new installer session starts too (landscaper apply --replace on the member that makes the installer's temporary key, <machine>.installerHostKey with landscaper.modules.machines, as in examples/install)"
		}
		p.Diagnostics = append(p.Diagnostics, resource.Diagnostic{Severity: resource.SeverityWarning,
			Summary: "the machine's disks will be erased", Detail: detail})
		if p.Describe && !p.IsUnknown("toplevel") {
			p.Details = installDetails(ctx, p.Desired.Address, p.Desired.Toplevel)
		}
	}
	if !p.IsUnknown("address") {
		p.Claims = append(p.Claims, "installation on "+net.JoinHostPort(p.Desired.Address, strconv.Itoa(int(p.Desired.Port))))
	}
}

func (in installInputs) target() remote.Target {
	t := in.connection.target(in.HostPublicKey)
	if in.Sudo != nil {
		t.Sudo = *in.Sudo
	}
	return t
}

// InstallError is a failed installation: the step and what became of the
// machine.
type InstallError struct {
	Host string
	Step string
	Err  error
	// State says what the machine's disks hold now.
	State string
}

func (e *InstallError) Error() string {
	return fmt.Sprintf("install on %s: %s failed: %v; %s", e.Host, e.Step, e.Err, e.State)
}

func (e *InstallError) Unwrap() error { return e.Err }

// installer is one installation in progress.
type installer struct {
	in    installInputs
	op    *sdk.Op
	t     remote.Target
	files map[string]installFile
	// erased is set once the disk script has started.
	erased bool
}

func (i *installer) fail(step string, err error) error {
	state := "nothing was changed on the machine"
	if i.erased {
		state = "the disks were being written: the machine is not installed; apply again to install from the start"
	}
	return &InstallError{Host: i.t.HostPort(), Step: step, Err: err, State: state}
}

// run runs a script on the target, bounded by within, logging the step.
func (i *installer) run(ctx context.Context, c *remote.Client, step, script string, within time.Duration, args ...string) (remote.Result, error) {
	i.op.Progress(step, -1)
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	quoted := make([]string, len(args))
	for k, a := range args {
		quoted[k] = remote.Quote(a)
	}
	prefix := ""
	if len(args) > 0 {
		prefix = "set -- " + strings.Join(quoted, " ") + "\n"
	}
	res, err := c.Run(ctx, step, prefix+script, nil)
	if err != nil {
		return res, i.fail(step, err)
	}
	return res, nil
}

func install(ctx context.Context, op *sdk.Op, in installInputs) (installOutputs, error) {
	files, diags := parseInstallFiles(in.ExtraFiles, nil)
	if diags.HasError() {
		return installOutputs{}, diags.Err()
	}
	pinned, err := normalizeKey(in.HostPublicKey)
	if err != nil {
		return installOutputs{}, fmt.Errorf("hostPublicKey: %w", err)
	}
	in.HostPublicKey = pinned
	i := &installer{in: in, op: op, t: in.target(), files: files}
	op.Progress("connecting to the installer on "+i.t.HostPort(), -1)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	c, err := remote.WaitFor(wctx, i.t, 30*time.Second, remote.DefaultBackoff, nil)
	cancel()
	if err != nil {
		return installOutputs{}, i.fail("connect", err)
	}
	defer c.Close()

	// 1. Never wipe a machine that is not running an installer; and every
	// step needs root.
	if err := checkRoot(ctx, c); err != nil {
		return installOutputs{}, i.fail("safety pre-flight", err)
	}
	if _, err := i.run(ctx, c, "safety pre-flight", preflightScript, time.Minute, InstallerMarker, mountPoint); err != nil {
		return installOutputs{}, fmt.Errorf("%w (to install a machine again, start a new installer session: replace the member that makes the installer's temporary host key, landscaper apply --replace <machine>.installerHostKey with landscaper.modules.machines, as in examples/install)", err)
	}
	op.Logf("%s runs an installer", i.t.HostPort())

	// 2. The disk script, with what it needs, into the installer's store.
	if err := i.copy(ctx, "copy the disk script", []string{storePathOf(in.DiskoScript)}, ""); err != nil {
		return installOutputs{}, err
	}
	i.erased = true
	res, err := i.run(ctx, c, "partition, format and mount the disks (disk script)", diskScript, seconds(in.DiskTimeout), in.DiskoScript, mountPoint)
	if err != nil {
		return installOutputs{}, err
	}
	for _, line := range lastLines(res.Stderr, 5) {
		op.Logf("disk script: %s", line)
	}

	// 3. The system's closure into the store on the new disks.
	if err := i.copy(ctx, "copy the system into "+mountPoint, []string{in.Toplevel}, "local?root="+mountPoint); err != nil {
		return installOutputs{}, err
	}
	op.Logf("copied %s into %s on %s", in.Toplevel, mountPoint, i.t.HostPort())

	// 4. The system profile, the host key and the extra files.
	if _, err := i.run(ctx, c, "set the system profile", profileScript, 5*time.Minute, in.Toplevel, mountPoint); err != nil {
		return installOutputs{}, err
	}
	if in.KeepHostKey {
		if _, err := i.run(ctx, c, "carry the host key into the installed system", hostKeyCopyScript, time.Minute, in.HostKeyPath, mountPoint, pinned); err != nil {
			return installOutputs{}, err
		}
	}
	if err := i.writeFiles(ctx, c); err != nil {
		return installOutputs{}, err
	}

	// 5. The boot loader, by the system's own switch-to-configuration.
	res, err = i.run(ctx, c, "install the boot loader (switch-to-configuration boot)", bootloaderScript, seconds(in.BootloaderTimeout), in.Toplevel, mountPoint)
	if err != nil {
		return installOutputs{}, err
	}
	for _, line := range lastLines(res.Stderr, 5) {
		op.Logf("boot loader: %s", line)
	}

	// 6. Unmount, reboot, and wait for the installed system.
	if _, err := i.run(ctx, c, "unmount "+mountPoint, unmountScript, 2*time.Minute, mountPoint); err != nil {
		return installOutputs{}, err
	}
	if in.BootInstalled != "" {
		// Before the reboot: from now on the boot server sends the machine
		// to its disk.
		if err := bootentry.WriteInstalled(in.BootInstalled, bootentry.Installed{Toplevel: in.Toplevel, At: time.Now().UTC()}); err != nil {
			return installOutputs{}, i.fail("record the installation for the boot server", err)
		}
		op.Logf("recorded the installation in %s: the boot server sends the machine to its disk", in.BootInstalled)
	}
	if err := i.rebootIntoInstalled(ctx, c); err != nil {
		return installOutputs{}, err
	}
	at := time.Now().UTC().Format(time.RFC3339)
	op.Logf("%s booted %s from its disk and presents host key %s", i.t.HostPort(), in.Toplevel, remote.Fingerprint(pinned))
	return installOutputs{Toplevel: in.Toplevel, InstalledAt: at, DiskoScript: in.DiskoScript, HostPublicKey: pinned}, nil
}

// copy copies store paths to the installer (into remoteStore if set).
func (i *installer) copy(ctx context.Context, step string, paths []string, remoteStore string) error {
	i.op.Progress(step, -1)
	cctx, cancel := context.WithTimeout(ctx, seconds(i.in.CopyTimeout))
	defer cancel()
	if err := remote.Copy(cctx, i.t, paths, remote.CopyOptions{RemoteStore: remoteStore}); err != nil {
		return i.fail(step, err)
	}
	return nil
}

// writeFiles writes extraFiles under the mount point, each through stdin.
func (i *installer) writeFiles(ctx context.Context, c *remote.Client) error {
	names := make([]string, 0, len(i.files))
	for name := range i.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := i.files[name]
		mode, _ := sdk.ParseFileMode(f.Mode)
		step := "write " + name
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := c.Run(wctx, step, "set -- "+remote.Quote(mountPoint+name)+" "+fmt.Sprintf("%04o", mode)+"\n"+writeFileScript, strings.NewReader(f.Contents))
		cancel()
		if err != nil {
			return i.fail(step, err)
		}
		i.op.Logf("wrote %s%s (mode %04o, %d bytes)", mountPoint, name, mode, len(f.Contents))
	}
	return nil
}

// rebootIntoInstalled reboots the installer and checks that the machine
// comes back from its disk, into the installed system, presenting the
// same pinned key.
func (i *installer) rebootIntoInstalled(ctx context.Context, c *remote.Client) error {
	nc, err := rebootAndWait(ctx, i.op, c, seconds(i.in.RebootTimeout))
	if err != nil {
		return &InstallError{Host: i.t.HostPort(), Step: "reboot into the installed system", Err: err,
			State: "the system is installed on the disks; check the machine's console"}
	}
	defer nc.Close()
	st, err := probeInstalled(ctx, nc)
	if err != nil {
		return &InstallError{Host: i.t.HostPort(), Step: "verify the installed system", Err: err, State: "the system is installed on the disks"}
	}
	switch {
	case st.installer:
		return &InstallError{Host: i.t.HostPort(), Step: "verify the installed system",
			Err:   errors.New("the machine booted the installer again, not its disk"),
			State: "the system is installed on the disks; the boot server or the boot order sends the machine to the installer: an installed machine's boot entry must send it to its disk"}
	case st.booted != i.in.Toplevel:
		return &InstallError{Host: i.t.HostPort(), Step: "verify the installed system",
			Err:   fmt.Errorf("/run/booted-system is %s, not %s", orNone(st.booted), i.in.Toplevel),
			State: "the machine booted something else from its disks"}
	}
	return nil
}

// installedState is what probeInstalled found.
type installedState struct {
	installer bool
	booted    string
}

func probeInstalled(ctx context.Context, c *remote.Client) (installedState, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := c.Run(ctx, "inspect the machine", "set -- "+remote.Quote(InstallerMarker)+"\n"+installedProbeScript, nil)
	if err != nil {
		return installedState{}, err
	}
	var st installedState
	for _, line := range strings.Split(res.Stdout, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "installer":
			st.installer = v == "1"
		case "booted":
			st.booted = v
		}
	}
	return st, nil
}

// readInstall: the machine presents the pinned key and runs an installed
// system = exists; it presents another key (a re-netbooted installer with
// its temporary key) or runs the installer again = gone, so the next apply
// installs it again. A machine that does not answer keeps its record.
func readInstall(ctx context.Context, prior sdk.State[installInputs, installOutputs]) (installOutputs, bool, error) {
	if !prior.HasOutputs {
		return installOutputs{}, false, nil
	}
	in := prior.Inputs
	in.HostPublicKey = prior.Outputs.HostPublicKey
	if in.HostPublicKey == "" {
		in.HostPublicKey = prior.Inputs.HostPublicKey
	}
	c, err := dialWithin(ctx, in.target(), 30*time.Second)
	var mismatch *remote.HostKeyMismatchError
	switch {
	case errors.As(err, &mismatch):
		return installOutputs{}, false, nil
	case err != nil:
		return installOutputs{}, false, fmt.Errorf("read %s: %w", in.Address, err)
	}
	defer c.Close()
	st, err := probeInstalled(ctx, c)
	if err != nil {
		return installOutputs{}, false, fmt.Errorf("read %s: %w", in.Address, err)
	}
	if st.installer {
		return installOutputs{}, false, nil
	}
	return prior.Outputs, true, nil
}

func lastLines(s string, n int) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
