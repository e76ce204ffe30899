package bootserver

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// bootScript is boot.ipxe, the script every machine may start from: it
// chains to the machine's own script, named by its MAC address. The URL is
// relative, so the machine reaches this server at whatever address and by
// whatever protocol it fetched boot.ipxe (NAT included). With --replace the
// machine's script takes boot.ipxe's place, so its exit leaves iPXE.
const bootScript = `#!ipxe
# landscaper: chain to this machine's own script, named by its MAC address.
clear landscaper-chain-tries ||
:chain
chain --replace --autofree machine/${mac:hexhyp}.ipxe ||
inc landscaper-chain-tries
iseq ${landscaper-chain-tries} 5 && goto failed ||
echo landscaper: could not fetch machine/${mac:hexhyp}.ipxe, trying again in 5 seconds
sleep 5
goto chain
:failed
echo landscaper: could not fetch machine/${mac:hexhyp}.ipxe, going on to the next boot device
exit 1
`

// machineTemplate is a machine's own script. Every URL names the version
// the script was made from, so the kernel and initrds come from one entry
// even if the entry changes while the machine boots. initrd=<name> on the
// kernel command line is for the kernel's EFI stub, which loads the initrds
// by those names from iPXE; BIOS boots ignore it.
var machineTemplate = template.Must(template.New("machine").Parse(`#!ipxe
# landscaper: boot entry for {{.MAC}}, version {{.Version}}.
clear landscaper-tries ||
:fetch
kernel --name kernel {{.KernelURL}}{{with .Args}} {{.}}{{end}} || goto retry
{{- range .Initrds}}
initrd --name {{.Name}} {{.URL}} || goto retry
{{- end}}
boot || goto retry
:retry
imgfree kernel ||
{{- range .Initrds}}
imgfree {{.Name}} ||
{{- end}}
inc landscaper-tries
iseq ${landscaper-tries} {{.Attempts}} && goto failed ||
echo landscaper: loading the boot files failed, trying again in {{.Delay}} seconds
sleep {{.Delay}}
goto fetch
:failed
echo landscaper: could not load the boot files of {{.MAC}} after {{.Attempts}} attempts
exit 1
`))

// noEntryTemplate is what a machine without an entry gets when the
// deployment made no default entry: it says why and leaves iPXE, so the
// firmware goes on to its next boot device. An unknown machine boots an
// installer only when the deployment asked for it (mac = "default").
var noEntryTemplate = template.Must(template.New("no-entry").Parse(`#!ipxe
echo landscaper: there is no boot entry for {{.MAC}} in landscaper, so this machine does not boot from the network
echo landscaper: going on to the next boot device
exit 1
`))

// installedTemplate is what an installed machine gets: it leaves iPXE so
// the firmware boots the next device, the machine's disk.
var installedTemplate = template.Must(template.New("installed").Parse(`#!ipxe
echo landscaper: {{.MAC}} is installed ({{.Toplevel}}); booting from its disk
exit 1
`))

func renderInstalledScript(mac, toplevel string) []byte {
	var b bytes.Buffer
	// The MAC is normalised; the store path is shown through echo only.
	_ = installedTemplate.Execute(&b, struct{ MAC, Toplevel string }{mac, scriptSafe(toplevel)})
	return b.Bytes()
}

// scriptSafe keeps only characters that mean nothing to iPXE's parser.
func scriptSafe(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '-' || r == '.' || r == '_' || r == '+' {
			out = append(out, r)
		}
	}
	return string(out)
}

// scriptAttempts and scriptDelay are how often and how far apart a
// machine's script tries to load its boot files.
const (
	scriptAttempts = 5
	scriptDelay    = 5
)

type scriptInitrd struct{ Name, URL string }

type machineScriptData struct {
	MAC, Version string
	KernelURL    string
	Args         string
	Initrds      []scriptInitrd
	Attempts     int
	Delay        int
}

// renderMachineScript renders v's script. base is what the files' names are
// appended to: "../" (relative to the script's own URL, machine/<mac>.ipxe)
// or the absolute HTTP base URL ending in "/".
func renderMachineScript(v *bootentry.Version, base string) ([]byte, error) {
	if err := checkCmdline(v.Cmdline); err != nil {
		return nil, fmt.Errorf("entry %s version %s: %w", v.MAC, v.ID, err)
	}
	d := machineScriptData{
		MAC: v.MAC, Version: v.ID,
		KernelURL: base + versionFileName(v.MAC, v.ID, "kernel"),
		Attempts:  scriptAttempts, Delay: scriptDelay,
	}
	var args []string
	for i := range v.Initrds {
		name := fmt.Sprintf("initrd%d", i)
		d.Initrds = append(d.Initrds, scriptInitrd{Name: name, URL: base + versionFileName(v.MAC, v.ID, fmt.Sprintf("initrd/%d", i))})
		args = append(args, "initrd="+name)
	}
	if v.HasExtra {
		d.Initrds = append(d.Initrds, scriptInitrd{Name: bootentry.ExtraName, URL: base + versionFileName(v.MAC, v.ID, bootentry.ExtraName)})
		args = append(args, "initrd="+bootentry.ExtraName)
	}
	// Only spaces are trimmed: the command line holds no other ASCII
	// whitespace (checkCmdline), and Unicode spaces are part of its words
	// for iPXE and the kernel alike.
	if c := strings.Trim(v.Cmdline, " "); c != "" {
		args = append(args, c)
	}
	d.Args = strings.Join(args, " ")
	var b bytes.Buffer
	if err := machineTemplate.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render script of %s: %w", v.MAC, err)
	}
	return b.Bytes(), nil
}

// renderNoEntryScript renders the script for a MAC without an entry.
func renderNoEntryScript(mac string) []byte {
	var b bytes.Buffer
	// The MAC is normalised (hex and colons), so the template cannot fail.
	_ = noEntryTemplate.Execute(&b, struct{ MAC string }{mac})
	return b.Bytes()
}

// checkCmdline re-checks a command line before it goes into a script:
// bootentry.CheckCmdline (no control characters, no ${...}), and none of
// the words iPXE's command parser treats specially in a script line ("||",
// "&&" and ";" end the command, a word starting with "#" starts a comment),
// which would let a command line run iPXE commands of its own.
func checkCmdline(cmdline string) error {
	if err := bootentry.CheckCmdline(cmdline); err != nil {
		return err
	}
	for _, w := range strings.Fields(cmdline) {
		if w == "||" || w == "&&" || w == ";" || strings.HasPrefix(w, "#") {
			return fmt.Errorf("the kernel command line may not hold the word %q: iPXE would treat it as script syntax", w)
		}
	}
	return nil
}
