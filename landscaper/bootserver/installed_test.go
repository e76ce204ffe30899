package bootserver

import (
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/providers/pxe-nbp/bootentry"
)

// An installed machine (its installation recorded beside the entries) gets
// a script that leaves iPXE for its disk, over TFTP and HTTP; once the
// record is removed it gets its entry again.
func TestInstalledMachineBootsItsDisk(t *testing.T) {
	f := newFixture(t, nil)
	const mac = "52:54:00:00:00:42"
	f.putEntry(mac, []byte("kernel"), [][]byte{[]byte("initrd")}, "console=ttyS0", nil)
	script := bootentry.ScriptPath(mac)
	record := bootentry.InstalledPath(f.bootDir, mac)
	toplevel := "/nix/store/0123456789abcdefghijklmnopqrstuv-nixos-system-web1"
	if err := bootentry.WriteInstalled(record, bootentry.Installed{Toplevel: toplevel, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	check := func(body string, installed bool) {
		t.Helper()
		hasKernel := strings.Contains(body, "kernel ")
		hasExit := strings.Contains(body, "exit") && strings.Contains(body, "booting from its disk")
		if installed && (hasKernel || !hasExit || !strings.Contains(body, toplevel)) {
			t.Errorf("the installed machine's script does not send it to its disk:\n%s", body)
		}
		if !installed && (!hasKernel || hasExit) {
			t.Errorf("the machine's script after the record went is not its entry's:\n%s", body)
		}
	}
	b, _, err := tftpGet(f.tftpAddr(), script, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	check(string(b), true)
	_, body := httpGet(t, f.httpBase()+script, nil)
	check(string(body), true)
	if m := f.scrape(); m[reqSeries("tftp", outcomeLocalBoot)] != 1 || m[reqSeries("http", outcomeLocalBoot)] != 1 {
		t.Errorf("local_boot counters: tftp %d, http %d, want 1 and 1", m[reqSeries("tftp", outcomeLocalBoot)], m[reqSeries("http", outcomeLocalBoot)])
	}
	if err := bootentry.RemoveInstalled(record); err != nil {
		t.Fatal(err)
	}
	b, _, err = tftpGet(f.tftpAddr(), script, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	check(string(b), false)
}
