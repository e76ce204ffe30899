package installtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/internal/testhost"
	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"
)

// mac is the stand-in server's MAC address.
const mac = "52:54:00:6c:73:01"

// TestInstall applies examples/install while a stand-in server boots from
// `landscaper serve`: one apply takes the server from "no entry" to
// "runs its system under a new host key", and a second apply changes
// nothing.
func TestInstall(t *testing.T) {
	requireTools(t)
	work := t.TempDir()
	dir := filepath.Join(work, "deployment")
	testbin.CopyExample(t, "install", dir)
	bootDir := filepath.Join(work, "boot")
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testhost.FreePort(t)
	local := fmt.Sprintf("{\n  address = \"127.0.0.1\";\n  port = %d;\n  mac = %q;\n  bootDir = %q;\n}\n", port, mac, bootDir)
	if err := os.WriteFile(filepath.Join(dir, "params.local.nix"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bootDir)

	apply := start(t, dir, "apply", "--auto-approve")

	// The server boots: over TFTP, it asks for its script until the apply
	// has written its entry, then fetches the entry's files and unpacks
	// the extra initrd. Only then does its sshd start.
	bootCtx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	go func() {
		select {
		case <-apply.done: // no point waiting for an entry after the apply ended
			cancel()
		case <-bootCtx.Done():
		}
	}()
	boot, err := testhost.NetBoot(bootCtx, testhost.BootOptions{
		URL: "tftp://" + srv.tftpAddr + "/", MAC: mac, Dir: t.TempDir(), Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("the server did not boot: %v\napply:\n%s\nlandscaper serve:\n%s", err, apply.output(), srv.log.String())
	}
	host := testhost.Start(t, testhost.Options{HostKey: boot.HostKey, AuthorizedKeys: boot.AuthorizedKeys, Port: port})
	apply.wait(t, 0)
	if !strings.Contains(apply.stdout.String(), "Apply complete! Resources: 5 added, 0 changed, 0 replaced, 0 destroyed") {
		t.Errorf("the apply does not report 5 members added:\n%s", apply.output())
	}

	outputs := testbin.StateOutputs(t, dir)

	// The entry carried the temporary host key and the deployer's key.
	temporary := keyOnly(t, testbin.OutputString(t, outputs, "server.installerHostKey", "publicKey"))
	if got := publicOf(t, boot.HostKey); got != temporary {
		t.Errorf("the extra initrd's host key is %s, want installerHostKey's %s", got, temporary)
	}
	if want := testbin.OutputString(t, outputs, "server.deployKey", "publicKey") + "\n"; boot.AuthorizedKeys != want {
		t.Errorf("the extra initrd's authorized_keys is %q, want deployKey's %q", boot.AuthorizedKeys, want)
	}
	served := false
	for _, l := range strings.Split(srv.log.String(), "\n") {
		served = served || (strings.Contains(l, "protocol=tftp") && strings.Contains(l, "/"+boot.Version+"/extra.cpio") && strings.Contains(l, "outcome=ok"))
	}
	if !served {
		t.Errorf("landscaper serve logged no TFTP transfer of version %s's extra.cpio:\n%s", boot.Version, srv.log.String())
	}

	// hostKey checked the boot server's record (the archive went to the
	// server alone) and sealed it: the boot server no longer hands the
	// temporary key to anyone, the server included.
	record := filepath.Join(bootDir, "versions", strings.ReplaceAll(mac, ":", "-"), boot.Version, "fetch")
	if got := testbin.OutputString(t, outputs, "server.netboot", "fetchRecord"); got != record {
		t.Errorf("netboot's fetchRecord is %s, want %s", got, record)
	}
	for _, want := range []string{"127.0.0.1 fetched the machine's script first", "127.0.0.1 got the archive", "sealed " + record} {
		if !strings.Contains(apply.stdout.String(), want) {
			t.Errorf("the apply does not say %q:\n%s", want, apply.output())
		}
	}
	if _, err := os.Stat(filepath.Join(record, "sealed")); err != nil {
		t.Errorf("the version is not sealed: %v", err)
	}
	extraURL := "tftp://" + srv.tftpAddr + "/v/" + strings.ReplaceAll(mac, ":", "-") + "/" + boot.Version + "/extra.cpio"
	if out, err := exec.Command("curl", "--silent", "--show-error", "--fail", "--interface", "127.0.0.1", "--output", filepath.Join(t.TempDir(), "extra"), extraURL).CombinedOutput(); err == nil {
		t.Errorf("after the seal, the server got its extra initrd again (%s)", out)
	}

	// The host key was rotated: the server presents a new key, the one the
	// state records, and no longer the temporary one.
	presented := presentedKey(t, port)
	recorded := keyOnly(t, testbin.OutputString(t, outputs, "server.hostKey", "hostPublicKey"))
	if presented == temporary {
		t.Errorf("the server still presents the temporary host key %s", temporary)
	}
	if presented != recorded {
		t.Errorf("the server presents %s, the state records hostKey.hostPublicKey %s", presented, recorded)
	}
	if onDisk := keyOnly(t, host.HostPublicKey()); onDisk != presented {
		t.Errorf("the server's host key file holds %s, it presents %s", onDisk, presented)
	}

	// The server runs the example's system, and boots it.
	want := toplevel(t, dir)
	if !host.HasPath(want) {
		t.Errorf("the server's store does not hold %s", want)
	}
	for what, got := range map[string]string{
		"/run/current-system": host.CurrentSystem(),
		"the system profile":  host.ProfileSystem(),
		"the boot default":    host.BootDefault(),
		"system.toplevel":     testbin.OutputString(t, outputs, "server.system", "toplevel"),
	} {
		if got != want {
			t.Errorf("%s is %q, want %s", what, got, want)
		}
	}
	activations := host.Activations()
	if len(activations) == 0 {
		t.Errorf("the system's switch-to-configuration never ran")
	}

	// A second apply has nothing to do: plan exits 0, apply changes
	// nothing, and the server is left as it was.
	plan := landscaper(t, dir, 0, "plan", "--detailed-exitcode")
	again := landscaper(t, dir, 0, "apply", "--auto-approve", "--json")
	// With nothing to do, apply prints its plan (and no summary).
	var planned struct {
		Kind    string
		Changes []struct{ Member, Action string }
		Add     int
		Change  int
		Destroy int
	}
	noops := 0
	for _, l := range strings.Split(strings.TrimSpace(again.stdout.String()), "\n") {
		var ev struct{ Kind string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("the second apply's --json output has a line that is not JSON: %q: %v", l, err)
		}
		switch ev.Kind {
		case "plan":
			if err := json.Unmarshal([]byte(l), &planned); err != nil {
				t.Fatalf("decode the plan %s: %v", l, err)
			}
			for _, c := range planned.Changes {
				if c.Action == "no-op" {
					noops++
				}
			}
		case "summary":
			if !strings.Contains(l, `"created":0,`) || !strings.Contains(l, `"updated":0,`) || !strings.Contains(l, `"replaced":0,`) || !strings.Contains(l, `"deleted":0,`) {
				t.Errorf("the second apply's summary reports changes: %s", l)
			}
		case "started", "done", "failed", "skipped":
			t.Errorf("the second apply did something: %s", l)
		}
	}
	if planned.Kind != "plan" || planned.Add+planned.Change+planned.Destroy != 0 || noops != 5 || len(planned.Changes) != 5 {
		t.Errorf("the second apply's plan is not 5 no-ops: %+v\n%s", planned, again.output())
	}
	if got := host.Activations(); len(got) != len(activations) {
		t.Errorf("the second apply activated again: %q, before %q", got, activations)
	}
	if got := presentedKey(t, port); got != presented {
		t.Errorf("after the second apply the server presents %s, before %s", got, presented)
	}

	// No private key reached the output of landscaper or of the boot
	// server: not the temporary host key, not the login key, not the key
	// generated on the server.
	rotated, err := os.ReadFile(filepath.Join(host.Dir, "etc-ssh", "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{
		"installerHostKey": testbin.OutputString(t, outputs, "server.installerHostKey", "privateKey"),
		"deployKey":        testbin.OutputString(t, outputs, "server.deployKey", "privateKey"),
		"the rotated key":  string(rotated),
	}
	texts := map[string]string{
		"the first apply's stdout":  apply.stdout.String(),
		"the first apply's stderr":  apply.stderr.String(),
		"the plan's output":         plan.output(),
		"the second apply's output": again.output(),
		"landscaper serve's log":    srv.log.String(),
	}
	for name, key := range keys {
		lines := testbin.SecretLines(key)
		if len(lines) == 0 {
			t.Fatalf("%s has no key material lines: the check would check nothing", name)
		}
		for where, text := range texts {
			for _, l := range lines {
				if strings.Contains(text, l) {
					t.Errorf("%s shows private key material of %s", where, name)
					break
				}
			}
		}
	}
	for where, text := range texts {
		if strings.Contains(text, "PRIVATE KEY") {
			t.Errorf("%s shows a PRIVATE KEY block", where)
		}
	}
}

// toplevel is the store path of the example's system, from its params.nix.
func toplevel(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("nix-instantiate", "--eval", "--json", "-E", fmt.Sprintf("(import %s/params.nix).toplevel.outPath", dir))
	cmd.Env = testbin.Env()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("evaluate the example's toplevel: %v", err)
	}
	var p string
	if err := json.Unmarshal(out, &p); err != nil || !strings.HasPrefix(p, "/nix/store/") {
		t.Fatalf("the example's toplevel is %s (%v)", out, err)
	}
	return p
}

// TestInstallRefusesATakenHostKey: another machine on the boot network
// (127.0.0.2, a second source address on loopback) knows the server's
// MAC, fetches its script and extra initrd before the server does, and
// answers SSH at the server's address with the temporary host key it
// found there. The server, booting next, is refused the extra initrd, and
// landscaper serve raises an alarm. The apply fails at hostKey, naming
// both addresses, before any credential is offered: the deployer's login
// key never reaches the impostor, nothing is copied to it, and the
// temporary key is not sealed, so the record stays as evidence.
func TestInstallRefusesATakenHostKey(t *testing.T) {
	requireTools(t)
	const impostorAddr = "127.0.0.2"
	work := t.TempDir()
	dir := filepath.Join(work, "deployment")
	testbin.CopyExample(t, "install", dir)
	bootDir := filepath.Join(work, "boot")
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testhost.FreePort(t)
	local := fmt.Sprintf("{\n  address = \"127.0.0.1\";\n  port = %d;\n  mac = %q;\n  bootDir = %q;\n}\n", port, mac, bootDir)
	if err := os.WriteFile(filepath.Join(dir, "params.local.nix"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bootDir)
	apply := start(t, dir, "apply", "--auto-approve")
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	url := "tftp://" + srv.tftpAddr + "/"

	// The impostor asks until the entry is there, and gets it all.
	stolen, err := testhost.NetBoot(ctx, testhost.BootOptions{URL: url, MAC: mac, Dir: t.TempDir(), LocalAddr: impostorAddr, Logf: t.Logf})
	if err != nil {
		t.Fatalf("the impostor did not get the entry: %v\napply:\n%s\nlandscaper serve:\n%s", err, apply.output(), srv.log.String())
	}
	// The server boots: it gets its script and kernel, not the archive.
	if _, err := testhost.NetBoot(ctx, testhost.BootOptions{URL: url, MAC: mac, Dir: t.TempDir(), LocalAddr: "127.0.0.1", Logf: t.Logf}); err == nil {
		t.Fatal("the server got its extra initrd after another client had taken it")
	} else if !strings.Contains(err.Error(), "extra.cpio") {
		t.Errorf("the server's boot failed, but not at the extra initrd: %v", err)
	}
	impostor := testhost.Start(t, testhost.Options{HostKey: stolen.HostKey, AuthorizedKeys: stolen.AuthorizedKeys, Port: port})
	apply.wait(t, 1)

	out := apply.output()
	for _, want := range []string{"server.hostKey", "refused before authenticating", "may be in other hands",
		impostorAddr + " fetched the machine's script first", "127.0.0.1 was refused the archive",
		"the archive went to " + impostorAddr + ", but the host is reached at 127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the apply's output does not say %q:\n%s", want, out)
		}
	}
	log := impostor.SSHDLog()
	for _, sign := range []string{"publickey", "Accepted", "authenticating user", "Postponed"} {
		if strings.Contains(log, sign) {
			t.Errorf("the impostor's sshd saw an authentication attempt (%q):\n%s", sign, log)
		}
	}
	if !strings.Contains(log, "Connection from 127.0.0.1") {
		t.Errorf("the impostor's sshd log shows no connection, so the check above proves nothing:\n%s", log)
	}
	if acts := impostor.Activations(); len(acts) != 0 || impostor.HasPath(toplevel(t, dir)) {
		t.Errorf("the system reached the impostor: activations %q", acts)
	}
	outputs := testbin.StateOutputs(t, dir)
	for _, member := range []string{"server.hostKey", "server.system"} {
		if o, ok := outputs[member]; ok && len(o) > 0 {
			t.Errorf("the state records %s: %v", member, o)
		}
	}

	// The boot server raised the alarm for the server's request, and
	// still refuses the archive to it; nothing sealed the version.
	alarm := false
	for _, l := range strings.Split(srv.log.String(), "\n") {
		alarm = alarm || (strings.Contains(l, "level=ERROR") && strings.Contains(l, "remote=127.0.0.1:") &&
			strings.Contains(l, "extra.cpio") && strings.Contains(l, "refused=other_client") && strings.Contains(l, "claimed_by="+impostorAddr))
	}
	if !alarm {
		t.Errorf("landscaper serve logged no alarm for the refused extra initrd:\n%s", srv.log.String())
	}
	record := filepath.Join(bootDir, "versions", strings.ReplaceAll(mac, ":", "-"), stolen.Version, "fetch")
	if _, err := os.Stat(filepath.Join(record, "sealed")); !os.IsNotExist(err) {
		t.Errorf("the refused version is sealed (%v): the record should stay as it was", err)
	}
}
