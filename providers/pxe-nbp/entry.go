package pxenbp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/cpio"
	"github.com/landscaper-nix/landscaper/providers/sdk"
)

// DefaultFileMode is the mode of a file in files whose mode is not given.
const DefaultFileMode = "0444"

// damagedVersion is the version Read reports for an entry that is there
// but cannot be read whole (edited by hand, cut short): never the ID of a
// version that Create writes, so the next plan updates it.
const damagedVersion = "damaged"

// entryInputs are the inputs of pxe-nbp.entry. Files stay raw JSON: their
// objects are checked by validateEntry, which can name the path of what is
// wrong in them.
type entryInputs struct {
	MAC     string                     `json:"mac"`
	Kernel  string                     `json:"kernel"`
	Initrd  []string                   `json:"initrd"`
	Cmdline string                     `json:"cmdline"`
	Files   map[string]json.RawMessage `json:"files"`
	BootDir string                     `json:"bootDir"`
}

// entryOutputs are the outputs of pxe-nbp.entry.
type entryOutputs struct {
	MAC         string `json:"mac"`
	ScriptPath  string `json:"scriptPath"`
	Version     string `json:"version"`
	FetchRecord string `json:"fetchRecord"`
	Owner       string `json:"owner"`
	Installed   string `json:"installedRecord"`
}

// extraFile is one decoded member of files.
type extraFile struct {
	Contents string
	Mode     string
	Perm     os.FileMode
}

func entryType() *sdk.Type[entryInputs, entryOutputs] {
	files := sdk.Map("files", "object", "Files for this machine alone: absolute path inside the booted initrd -> { contents; mode ? \"0444\"; }. Appended to its initrd as an extra cpio archive.").
		Default(map[string]any{}).Sensitive()
	files.Attributes = []resource.Attribute{
		sdk.String("contents", "The file's contents.").Required().Sensitive().Attribute,
		sdk.String("mode", "Permission bits in octal, like \"0400\".").Default(DefaultFileMode).Attribute,
	}
	return &sdk.Type[entryInputs, entryOutputs]{
		Description: "A network boot entry for one machine, served by landscaper serve: kernel, initrds, kernel command line and files for that machine alone.",
		Inputs: []sdk.Attr{
			sdk.String("mac", "The machine's MAC address, in any common notation (52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456, 525400123456, 01-52-54-00-12-34-56), or \"default\" for the default entry: what every machine without an entry of its own boots (its files go to every such machine). A change replaces the entry.").Required().ForceNew(),
			sdk.String("kernel", "Absolute path of the kernel image, usually a store path (.../bzImage).").Required(),
			sdk.List("initrd", "string", "Absolute paths of the initrds, in the order they are loaded.").Default([]string{}),
			sdk.String("cmdline", "The kernel command line. No newlines or other control characters, no ${...}.").Default(""),
			files,
			sdk.String("bootDir", "The boot directory the boot server reads. A change replaces the entry.").Default(bootentry.DefaultDir).ForceNew(),
		},
		Outputs: []sdk.Attr{
			sdk.String("mac", "The MAC address, normalised: lowercase with colons (\"default\" for the default entry)."),
			sdk.String("scriptPath", "URL path, relative to the boot server's root, of this machine's iPXE script (machine/<mac-with-hyphens>.ipxe)."),
			sdk.String("version", "ID of the entry's version in the boot directory: a hash of its content."),
			sdk.String("fetchRecord", "With files: the directory where the boot server records which client fetched this version's script (the only one it serves the extra archive to), who got the archive and who was refused; give it to nixos.host-key's bootRecord. Empty without files."),
			sdk.String("installedRecord", "Where the machine's installation is recorded in the boot directory (installed/<mac>.json); give it to nixos.install's bootInstalledRecord. While it exists the boot server sends the machine to its disk instead of this entry."),
			// An update keeps the member's token; a new entry gets a new one.
			sdk.String("owner", "The token with which this member owns the MAC's entry in the boot directory (recorded in owners/<mac>.json); another deployment writing an entry for the same MAC there is refused.").KeepPrior(),
		},
		Validate: validateEntry,
		// Another notation of the same MAC, or the same boot directory
		// spelled differently, is the same entry.
		SameInput: map[string]func(prior, desired entryInputs) bool{
			"mac": func(prior, desired entryInputs) bool {
				a, errA := bootentry.NormalizeKey(prior.MAC)
				b, errB := bootentry.NormalizeKey(desired.MAC)
				return errA == nil && errB == nil && a == b
			},
			"bootDir": func(prior, desired entryInputs) bool {
				return filepath.Clean(prior.BootDir) == filepath.Clean(desired.BootDir)
			},
		},
		Plan: planEntry,
		Create: func(ctx context.Context, op *sdk.Op, in entryInputs) (entryOutputs, error) {
			token, err := bootentry.NewToken()
			if err != nil {
				return entryOutputs{}, err
			}
			return writeEntry(ctx, op, in, token)
		},
		Update: func(ctx context.Context, op *sdk.Op, prior sdk.State[entryInputs, entryOutputs], in entryInputs) (entryOutputs, error) {
			token := prior.Outputs.Owner
			if token == "" {
				// Written before owners were recorded: take it over.
				var err error
				if token, err = bootentry.NewToken(); err != nil {
					return entryOutputs{}, err
				}
			}
			return writeEntry(ctx, op, in, token)
		},
		Delete: deleteEntry,
		Read:   readEntry,
	}
}

// validateEntry checks what the schema cannot: the MAC, that the kernel
// and initrds are regular files, the command line, and the files. Values
// at unknown paths are not judged.
func validateEntry(in entryInputs, unknown []resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	known := func(p resource.Path) bool { return !resource.Covered(p, unknown) }
	if p := resource.AttrPath("mac"); known(p) {
		if _, err := bootentry.NormalizeKey(in.MAC); err != nil {
			diags = append(diags, resource.Error(p, "invalid MAC address", "%v", err))
		}
	}
	if p := resource.AttrPath("kernel"); known(p) {
		diags = append(diags, checkBootFile(p, "kernel", in.Kernel, false)...)
	}
	if p := resource.AttrPath("initrd"); known(p) {
		for i, name := range in.Initrd {
			if q := p.Index(i); known(q) {
				diags = append(diags, checkBootFile(q, "initrd", name, false)...)
			}
		}
	}
	if p := resource.AttrPath("cmdline"); known(p) {
		if err := bootentry.CheckCmdline(in.Cmdline); err != nil {
			diags = append(diags, resource.Error(p, "unsafe kernel command line", "%v", err))
		}
	}
	if p := resource.AttrPath("files"); known(p) {
		_, d := parseFiles(in.Files, unknown)
		diags = append(diags, d...)
	}
	if p := resource.AttrPath("bootDir"); known(p) && !filepath.IsAbs(in.BootDir) {
		diags = append(diags, resource.Error(p, "boot directory is not an absolute path", "%q: the provider and the boot server must find the same directory", in.BootDir))
	}
	return diags
}

// checkBootFile checks that a kernel or initrd path names a regular file.
// Before the apply (mustExist false) a store path that does not exist yet
// passes: the engine builds the derivations an input refers to right
// before applying the member, so an installer built by the deployment is
// there by then.
func checkBootFile(p resource.Path, what, name string, mustExist bool) resource.Diagnostics {
	fail := func(format string, args ...any) resource.Diagnostics {
		return resource.Diagnostics{resource.Error(p, "bad "+what+" path", format, args...)}
	}
	if name == "" {
		return fail("the %s path is empty", what)
	}
	if !filepath.IsAbs(name) {
		return fail("%q is not an absolute path (the boot server reads it as it is; a store path is usual)", name)
	}
	fi, err := os.Stat(name)
	switch {
	case errors.Is(err, os.ErrNotExist) && !mustExist && strings.HasPrefix(name, "/nix/store/"):
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fail("%s does not exist (is it built? a store path must be realised on the machine running landscaper)", name)
	case err != nil:
		return fail("cannot look at %s: %v", name, err)
	case !fi.Mode().IsRegular():
		return fail("%s is not a regular file (%s): give the %s image itself", name, kind(fi.Mode()), what)
	}
	return nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "not a plain file"
}

// parseFiles decodes and checks files. Diagnostics name the path of the
// problem and never show contents. Members whose object, contents or mode
// is unknown are left out of the result.
func parseFiles(raw map[string]json.RawMessage, unknown []resource.Path) (map[string]extraFile, resource.Diagnostics) {
	var diags resource.Diagnostics
	base := resource.AttrPath("files")
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	valid := map[string]bool{}
	out := map[string]extraFile{}
	for _, name := range names {
		p := base.Key(name)
		if err := checkFilePath(name); err != nil {
			diags = append(diags, resource.Error(p, "invalid file path", "%v", err))
			continue
		}
		valid[name] = true
		if resource.Covered(p, unknown) {
			continue
		}
		f, complete, d := parseFile(p, raw[name], unknown)
		diags = append(diags, d...)
		if complete && !d.HasError() {
			out[name] = f
		}
	}
	// A file cannot also be the directory of another.
	for _, name := range names {
		if !valid[name] {
			continue
		}
		for d := path.Dir(name); d != "/"; d = path.Dir(d) {
			if valid[d] {
				diags = append(diags, resource.Error(base.Key(name), "file below a file", "%s is also given as a file, so it cannot be the directory of %s", d, name))
				break
			}
		}
	}
	return out, diags
}

// checkFilePath checks a key of files: an absolute, clean path below /.
func checkFilePath(name string) error {
	switch {
	case !strings.HasPrefix(name, "/"):
		return fmt.Errorf("%q is not an absolute path (like \"/etc/ssh/ssh_host_ed25519_key\")", name)
	case slices.Contains(strings.Split(name, "/"), ".."):
		return fmt.Errorf("%q contains \"..\"", name)
	case name == "/":
		return errors.New(`"/" is a directory, not a file`)
	case path.Clean(name) != name:
		return fmt.Errorf("%q is not a clean path (no \"//\", \".\" steps or trailing \"/\"; it would be %q)", name, path.Clean(name))
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%q holds a control character", name)
	case name[1:] == cpio.Trailer:
		return fmt.Errorf("%q is the name that ends a cpio archive", name)
	}
	return nil
}

// parseFile decodes one member of files. complete is false when a part of
// it is unknown.
func parseFile(p resource.Path, raw json.RawMessage, unknown []resource.Path) (f extraFile, complete bool, diags resource.Diagnostics) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return f, false, resource.Diagnostics{resource.Error(p, "wrong type", "expected an attribute set { contents; mode; }, got %s", sdk.DescribeJSON(raw))}
	}
	attrs := make([]string, 0, len(obj))
	for a := range obj {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	for _, a := range attrs {
		if a != "contents" && a != "mode" {
			diags = append(diags, resource.Error(p.Attr(a), "unknown attribute", "%q is not an attribute of a file; a file has contents and mode", a))
		}
	}
	complete = true
	if cp := p.Attr("contents"); resource.Covered(cp, unknown) {
		complete = false
	} else if v, ok := obj["contents"]; !ok || isNull(v) {
		diags = append(diags, resource.Error(cp, "missing required input", "contents (string) must be set"))
	} else if err := json.Unmarshal(v, &f.Contents); err != nil {
		diags = append(diags, resource.Error(cp, "wrong type", "expected string, got %s", sdk.DescribeJSON(v)))
	}
	f.Mode = DefaultFileMode
	if mp := p.Attr("mode"); resource.Covered(mp, unknown) {
		complete = false
	} else if v, ok := obj["mode"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &f.Mode); err != nil {
			diags = append(diags, resource.Error(mp, "wrong type", "expected string, got %s", sdk.DescribeJSON(v)))
		} else if perm, err := sdk.ParseFileMode(f.Mode); err != nil {
			diags = append(diags, resource.Error(mp, "invalid file mode", "%v", err))
		} else {
			f.Perm = perm
		}
	} else {
		f.Perm, _ = sdk.ParseFileMode(f.Mode)
	}
	return f, complete, diags
}

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

// buildEntry makes the entry and the extra archive that inputs describe.
// Inputs must be known and valid.
func buildEntry(in entryInputs) (bootentry.Entry, []byte, error) {
	mac, err := bootentry.NormalizeKey(in.MAC)
	if err != nil {
		return bootentry.Entry{}, nil, err
	}
	files, diags := parseFiles(in.Files, nil)
	if err := diags.Err(); err != nil {
		return bootentry.Entry{}, nil, err
	}
	var extra []byte
	if len(files) > 0 {
		list := make([]cpio.File, 0, len(files))
		for name, f := range files {
			list = append(list, cpio.File{Path: name, Perm: f.Perm, Data: []byte(f.Contents)})
		}
		extra, err = cpio.Build(list)
		if err != nil {
			return bootentry.Entry{}, nil, fmt.Errorf("build the extra initrd: %w", err)
		}
	}
	initrds := slices.Clone(in.Initrd)
	if initrds == nil {
		initrds = []string{}
	}
	return bootentry.Entry{MAC: mac, Kernel: in.Kernel, Initrds: initrds, Cmdline: in.Cmdline}, extra, nil
}

// outputs are the outputs of the entry for mac in bootDir at version;
// hasExtra says whether that version has files, and so a fetch record.
func outputs(bootDir, mac, version string, hasExtra bool) entryOutputs {
	o := entryOutputs{MAC: mac, ScriptPath: bootentry.ScriptPath(mac), Version: version, Installed: bootentry.InstalledPath(filepath.Clean(bootDir), mac)}
	if hasExtra {
		o.FetchRecord = bootentry.FetchDirOf(filepath.Clean(bootDir), mac, version)
	}
	return o
}

// contentInputs are the inputs that make an entry's content, and so its
// version.
var contentInputs = []string{"kernel", "initrd", "cmdline", "files"}

// planEntry ignores changes of inputs that make the same entry (the SDK
// ignores changes of notation in mac and bootDir: SameInput), fills in
// the outputs known at plan time, and plans an update
// when the entry on disk is not the one recorded (Read refreshed the
// version) even if no input changed.
func planEntry(_ context.Context, p *sdk.Plan[entryInputs, entryOutputs]) {
	if p.IsUnknown("mac") {
		return
	}
	mac, err := bootentry.NormalizeKey(p.Desired.MAC)
	if err != nil {
		return
	}
	p.SetKnown(entryOutputs{MAC: mac, ScriptPath: bootentry.ScriptPath(mac)}, "mac", "scriptPath")
	if !p.IsUnknown("bootDir") {
		// One machine, one entry: two members for the same MAC (in any
		// notation) would overwrite and prune each other's versions.
		p.Claims = append(p.Claims, fmt.Sprintf("boot entry of MAC %s in %s", mac, filepath.Clean(p.Desired.BootDir)))
		p.SetKnown(entryOutputs{Installed: bootentry.InstalledPath(filepath.Clean(p.Desired.BootDir), mac)}, "installedRecord")
		// Nor may two deployments share one: an entry another owner holds
		// is refused now rather than at apply.
		token := ""
		if p.Prior != nil {
			token = p.Prior.Outputs.Owner
		}
		// An interrupted create's own entry is told apart by its content
		// when the state is settled (readEntry), not here.
		interrupted := p.Prior != nil && !p.Prior.HasOutputs
		store := bootentry.Store{Dir: p.Desired.BootDir}
		if o, err := store.Owner(mac); err == nil && o.Token != token && !interrupted {
			owned := &bootentry.OwnedError{MAC: mac, Dir: filepath.Clean(p.Desired.BootDir), Owner: *o}
			p.Diagnostics = append(p.Diagnostics, resource.Error(resource.AttrPath("mac"), "machine has another deployment's boot entry", "%v", owned))
		}
	}

	for _, name := range contentInputs {
		if p.IsUnknown(name) {
			return
		}
	}
	for _, u := range p.Unknown {
		if len(u) > 0 && (u[0].Name == "initrd" || u[0].Name == "files") {
			return
		}
	}
	e, extra, err := buildEntry(p.Desired)
	if err != nil {
		return
	}
	want, err := bootentry.VersionID(e, extra)
	if err != nil {
		return
	}
	p.SetKnown(entryOutputs{Version: want}, "version")
	if !p.IsUnknown("bootDir") {
		p.SetKnown(outputs(p.Desired.BootDir, mac, want, len(extra) > 0), "fetchRecord")
	}
	if p.Prior == nil || !p.Prior.HasOutputs {
		return
	}
	if p.Prior.Outputs.Version == want {
		// Inputs spelled differently that make the same entry (a default
		// mode written out, say) change nothing on disk.
		if p.Action == resource.ActionUpdate && !slices.ContainsFunc(p.Changed, func(c resource.Path) bool {
			return len(c) == 0 || !slices.Contains(contentInputs, c[0].Name)
		}) {
			p.Action, p.Changed = resource.ActionNoop, nil
		}
		return
	}
	// The entry on disk is not what these inputs make.
	switch p.Action {
	case resource.ActionNoop:
		p.Action = resource.ActionUpdate
		fallthrough
	case resource.ActionUpdate:
		for _, q := range driftPaths(bootentry.Store{Dir: p.Desired.BootDir}, e, extra) {
			if !slices.ContainsFunc(p.Changed, func(c resource.Path) bool { return c.String() == q.String() }) {
				p.Changed = append(p.Changed, q)
			}
		}
	}
}

// driftPaths names the inputs in which the entry on disk differs from the
// wanted one, as far as it can be read.
func driftPaths(store bootentry.Store, want bootentry.Entry, wantExtra []byte) []resource.Path {
	cur, err := store.Get(want.MAC)
	if err != nil {
		return nil
	}
	var ps []resource.Path
	if cur.Kernel != want.Kernel {
		ps = append(ps, resource.AttrPath("kernel"))
	}
	if !slices.Equal(cur.Initrds, want.Initrds) {
		ps = append(ps, resource.AttrPath("initrd"))
	}
	if cur.Cmdline != want.Cmdline {
		ps = append(ps, resource.AttrPath("cmdline"))
	}
	var curExtra []byte
	if p := cur.ExtraPath(); p != "" {
		curExtra, _ = os.ReadFile(p)
	}
	if !bytes.Equal(curExtra, wantExtra) {
		ps = append(ps, resource.AttrPath("files"))
	}
	return ps
}

// writeEntry puts the entry for create and update: a new version, switched
// to atomically. It logs names, modes and sizes, never contents.
func writeEntry(ctx context.Context, op *sdk.Op, in entryInputs, token string) (entryOutputs, error) {
	if err := ctx.Err(); err != nil {
		return entryOutputs{}, fmt.Errorf("write boot entry: %w", err)
	}
	diags := checkBootFile(resource.AttrPath("kernel"), "kernel", in.Kernel, true)
	for i, name := range in.Initrd {
		diags = append(diags, checkBootFile(resource.AttrPath("initrd").Index(i), "initrd", name, true)...)
	}
	if diags.HasError() {
		return entryOutputs{}, &resource.DiagnosticsError{Diagnostics: diags}
	}
	e, extra, err := buildEntry(in)
	if err != nil {
		return entryOutputs{}, fmt.Errorf("boot entry for %s: %w", in.MAC, err)
	}
	store := bootentry.Store{Dir: in.BootDir}
	if cur, err := store.Get(e.MAC); err == nil {
		op.Logf("%s has an entry (version %s) in %s; it is replaced", e.MAC, cur.ID, in.BootDir)
	}
	v, err := store.PutOwned(e, extra, bootentry.Owner{Token: token, Member: op.Name})
	if err != nil {
		return entryOutputs{}, fmt.Errorf("write boot entry for %s in %s: %w", e.MAC, in.BootDir, err)
	}
	op.Logf("boot entry for %s in %s is version %s: kernel %s, %d initrd(s), command line of %d bytes", e.MAC, in.BootDir, v.ID, e.Kernel, len(e.Initrds), len(e.Cmdline))
	if len(extra) > 0 {
		files, _ := parseFiles(in.Files, nil)
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			op.Logf("extra initrd file %s (mode %s, %d bytes)", name, files[name].Mode, len(files[name].Contents))
		}
		op.Logf("extra initrd: %d bytes", len(extra))
	}
	o := outputs(in.BootDir, e.MAC, v.ID, v.HasExtra)
	o.Owner = token
	return o, nil
}

// deleteEntry removes the entry and all its versions, so the machine no
// longer boots from the network into it. An entry that is gone already
// is a success.
func deleteEntry(ctx context.Context, op *sdk.Op, prior sdk.State[entryInputs, entryOutputs]) error {
	mac, err := bootentry.NormalizeKey(prior.Inputs.MAC)
	if err != nil {
		// Such inputs never made an entry.
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete boot entry %s: %w", mac, err)
	}
	store := bootentry.Store{Dir: prior.Inputs.BootDir}
	_, getErr := store.Get(mac)
	var owned *bootentry.OwnedError
	if err := store.DeleteOwned(mac, prior.Outputs.Owner); errors.As(err, &owned) {
		// Another deployment's entry for this machine: not ours to remove.
		op.Logf("left the boot entry for %s in %s alone: %v", mac, prior.Inputs.BootDir, err)
		return nil
	} else if err != nil {
		return fmt.Errorf("delete boot entry %s from %s: %w", mac, prior.Inputs.BootDir, err)
	}
	if errors.Is(getErr, bootentry.ErrNotFound) {
		op.Logf("boot entry for %s in %s is gone already", mac, prior.Inputs.BootDir)
	} else {
		op.Logf("removed the boot entry for %s from %s", mac, prior.Inputs.BootDir)
	}
	return nil
}

// readEntry reports whether the entry is there and which version it is
// now, hashed from what is on disk, so a change behind Landscaper's back
// shows as a new version and the next plan puts the entry back. For a
// create that was interrupted, the entry exists only if it is the one
// these inputs make.
func readEntry(ctx context.Context, prior sdk.State[entryInputs, entryOutputs]) (entryOutputs, bool, error) {
	mac, err := bootentry.NormalizeKey(prior.Inputs.MAC)
	if err != nil {
		return entryOutputs{}, false, nil
	}
	if err := ctx.Err(); err != nil {
		return entryOutputs{}, false, fmt.Errorf("read boot entry %s: %w", mac, err)
	}
	store := bootentry.Store{Dir: prior.Inputs.BootDir}
	version := damagedVersion
	hasExtra := false
	v, err := store.Get(mac)
	switch {
	case errors.Is(err, bootentry.ErrNotFound):
		return entryOutputs{}, false, nil
	case errors.Is(err, bootentry.ErrDamaged):
	case err != nil:
		return entryOutputs{}, false, fmt.Errorf("read boot entry %s in %s: %w", mac, prior.Inputs.BootDir, err)
	default:
		id, err := v.ContentID()
		switch {
		case errors.Is(err, bootentry.ErrDamaged):
		case err != nil:
			return entryOutputs{}, false, fmt.Errorf("read boot entry %s in %s: %w", mac, prior.Inputs.BootDir, err)
		default:
			version, hasExtra = id, v.HasExtra
		}
	}
	token := prior.Outputs.Owner
	owner, ownerErr := store.Owner(mac)
	if !prior.HasOutputs {
		e, extra, err := buildEntry(prior.Inputs)
		if err != nil {
			return entryOutputs{}, false, nil
		}
		want, err := bootentry.VersionID(e, extra)
		if err != nil || want != version {
			return entryOutputs{}, false, nil
		}
		// A create that was interrupted after it wrote the entry: the
		// owner it recorded is this member's.
		if ownerErr == nil {
			token = owner.Token
		}
	} else if ownerErr == nil && owner.Token != token {
		// Another deployment wrote this machine's entry since: it is not
		// this member's any more (the next plan says whose it is).
		return entryOutputs{}, false, nil
	}
	// The fetch record (who fetched the version, whether it is sealed) is
	// not the entry's content: a claimed or sealed version is the same
	// version, not a change behind Landscaper's back.
	o := outputs(prior.Inputs.BootDir, mac, version, hasExtra)
	o.Owner = token
	return o, true, nil
}
