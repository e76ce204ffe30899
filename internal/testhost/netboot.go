package testhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// BootOptions say where a stand-in machine finds its network boot entry.
type BootOptions struct {
	// URL is the boot server's root as the machine reaches it:
	// "tftp://127.0.0.1:69/" or "http://127.0.0.1:8069/".
	URL string
	// MAC is the machine's MAC address.
	MAC string
	// Dir receives the fetched files, and in root/ the unpacked extra
	// initrd. It must exist.
	Dir string
	// HostKeyPath and AuthorizedKeysPath are where the extra initrd holds
	// the host's private key and root's authorized_keys; defaults
	// /etc/ssh/ssh_host_ed25519_key and /etc/ssh/authorized_keys.d/root.
	HostKeyPath, AuthorizedKeysPath string
	// Interval is the time between two requests for the machine's script
	// while it has no entry; default 500 ms.
	Interval time.Duration
	// Logf, when set, receives progress lines (never file contents).
	Logf func(format string, args ...any)
	// LocalAddr, when set, is the local address the fetches come from
	// (curl --interface): 127.0.0.2, say, to play another machine on the
	// boot network.
	LocalAddr string
}

// Boot is what a stand-in machine fetched from the boot server.
type Boot struct {
	// ScriptURL is the URL of the machine's iPXE script, Script its text.
	ScriptURL, Script string
	// Version is the entry version the script was made from.
	Version string
	// Kernel and Initrds are the fetched files, in Dir.
	Kernel  string
	Initrds []string
	// Root is where the extra initrd was unpacked.
	Root string
	// HostKey is the private host key the extra initrd carries, and
	// AuthorizedKeys root's authorized_keys from it.
	HostKey, AuthorizedKeys string
}

// NetBoot does what a machine's firmware and initrd do up to starting
// sshd: it asks the boot server for machine/<mac>.ipxe (the script
// boot.ipxe chains to) until the machine has an entry, fetches the kernel
// and initrds that script names from the URLs it gives (relative ones
// resolved against the script's URL, as iPXE does), and unpacks the
// entry's extra initrd with `cpio -idm`. Fetches use curl, over TFTP or
// HTTP as the URL says. It fails when the entry has no extra initrd or the
// extra initrd lacks the host key or the authorized_keys, and when ctx
// ends before the machine has an entry.
func NetBoot(ctx context.Context, o BootOptions) (*Boot, error) {
	if o.HostKeyPath == "" {
		o.HostKeyPath = "/etc/ssh/ssh_host_ed25519_key"
	}
	if o.AuthorizedKeysPath == "" {
		o.AuthorizedKeysPath = "/etc/ssh/authorized_keys.d/root"
	}
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	mac, err := bootentry.NormalizeMAC(o.MAC)
	if err != nil {
		return nil, fmt.Errorf("MAC %q: %w", o.MAC, err)
	}
	base, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("boot server URL %q: %w", o.URL, err)
	}
	scriptURL := base.ResolveReference(&url.URL{Path: bootentry.ScriptPath(mac)})
	b := &Boot{ScriptURL: scriptURL.String(), Root: filepath.Join(o.Dir, "root")}

	scriptFile := filepath.Join(o.Dir, "machine.ipxe")
	var last error
	for tries := 1; ; tries++ {
		last = fetch(ctx, b.ScriptURL, scriptFile, o.LocalAddr)
		if last == nil {
			s, err := os.ReadFile(scriptFile)
			if err != nil {
				return nil, err
			}
			b.Script = string(s)
			if hasEntry(b.Script) {
				break
			}
			last = fmt.Errorf("the boot server has no entry for %s", mac)
		}
		if tries == 1 {
			logf("%s: %v; asking again every %s", b.ScriptURL, last, o.Interval)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: gave up after %d requests: %w (last: %v)", b.ScriptURL, tries, ctx.Err(), last)
		case <-time.After(o.Interval):
		}
	}
	b.Version = scriptVersion(b.Script)
	logf("fetched %s: entry version %s", b.ScriptURL, b.Version)

	kernel, initrds, err := parseScript(b.Script)
	if err != nil {
		return nil, err
	}
	b.Kernel = filepath.Join(o.Dir, "kernel")
	if err := fetchLogged(ctx, scriptURL, kernel, b.Kernel, "kernel", o.LocalAddr, logf); err != nil {
		return nil, err
	}
	extra := ""
	for _, in := range initrds {
		local := filepath.Join(o.Dir, "initrd-"+in.name)
		if err := fetchLogged(ctx, scriptURL, in.url, local, "initrd "+in.name, o.LocalAddr, logf); err != nil {
			return nil, err
		}
		b.Initrds = append(b.Initrds, local)
		if in.name == bootentry.ExtraName {
			extra = local
		}
	}
	if extra == "" {
		return nil, fmt.Errorf("the entry of %s has no %s (no files): nothing carries the host key", mac, bootentry.ExtraName)
	}
	if err := unpack(ctx, extra, b.Root); err != nil {
		return nil, err
	}
	files, err := listFiles(b.Root)
	if err != nil {
		return nil, err
	}
	logf("unpacked %s: %s", bootentry.ExtraName, strings.Join(files, ", "))
	read := func(p string) (string, error) {
		c, err := os.ReadFile(filepath.Join(b.Root, filepath.FromSlash(p)))
		if err != nil {
			return "", fmt.Errorf("%s of %s: %w", bootentry.ExtraName, mac, err)
		}
		return string(c), nil
	}
	if b.HostKey, err = read(o.HostKeyPath); err != nil {
		return nil, err
	}
	if b.AuthorizedKeys, err = read(o.AuthorizedKeysPath); err != nil {
		return nil, err
	}
	return b, nil
}

// hasEntry tells a machine's script from the script of a MAC without an
// entry: only the first loads a kernel.
func hasEntry(script string) bool {
	for _, l := range strings.Split(script, "\n") {
		if strings.HasPrefix(l, "kernel ") {
			return true
		}
	}
	return false
}

// scriptVersion reads the version from the script's header comment,
// "# landscaper: boot entry for <mac>, version <version>.".
func scriptVersion(script string) string {
	for _, l := range strings.Split(script, "\n") {
		if _, v, ok := strings.Cut(l, ", version "); ok && strings.HasPrefix(l, "#") {
			return strings.TrimSuffix(v, ".")
		}
	}
	return ""
}

type scriptInitrd struct{ name, url string }

// parseScript finds the URLs of the kernel and the initrds in an iPXE
// script's "kernel --name NAME URL ..." and "initrd --name NAME URL ..."
// lines.
func parseScript(script string) (kernel string, initrds []scriptInitrd, err error) {
	for _, l := range strings.Split(script, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "kernel" && f[0] != "initrd") {
			continue
		}
		name, u := "", ""
		for i := 1; i < len(f) && u == ""; i++ {
			switch {
			case f[i] == "--name" && i+1 < len(f):
				name = f[i+1]
				i++
			case strings.HasPrefix(f[i], "--"):
			default:
				u = f[i]
			}
		}
		if u == "" {
			return "", nil, fmt.Errorf("the script's line %q names no URL", l)
		}
		if f[0] == "kernel" {
			kernel = u
		} else {
			initrds = append(initrds, scriptInitrd{name: name, url: u})
		}
	}
	if kernel == "" {
		return "", nil, errors.New("the script loads no kernel")
	}
	return kernel, initrds, nil
}

func fetchLogged(ctx context.Context, script *url.URL, ref, local, what, from string, logf func(string, ...any)) error {
	r, err := url.Parse(ref)
	if err != nil {
		return fmt.Errorf("%s URL %q: %w", what, ref, err)
	}
	u := script.ResolveReference(r).String()
	if err := fetch(ctx, u, local, from); err != nil {
		return err
	}
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	logf("fetched %s: %s (%d bytes)", what, u, fi.Size())
	return nil
}

// fetch downloads u into local with curl, from the local address from
// when it is set.
func fetch(ctx context.Context, u, local, from string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{"--silent", "--show-error", "--fail", "--output", local}
	if from != "" {
		args = append(args, "--interface", from)
	}
	cmd := exec.CommandContext(ctx, "curl", append(args, u)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("curl %s: %v: %s", u, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// unpack unpacks a newc cpio archive into dir, as the kernel unpacks an
// initrd: GNU cpio, keeping modes and times, never above dir.
func unpack(ctx context.Context, archive, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, f
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cpio -idm %s: %v: %s", archive, err, out)
	}
	return nil
}

// listFiles lists the regular files under root as "/path (mode)".
func listFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, fmt.Sprintf("%s (%04o)", path.Join("/", filepath.ToSlash(rel)), fi.Mode().Perm()))
		return nil
	})
	return files, err
}
