package bootserver

import (
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
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
	// A TFTP transfer is counted once its last ACK is in, a moment after
	// the client has the file.
	eventually(t, 10*time.Second, "one local_boot over each protocol", func() bool {
		m := f.scrape()
		return m[reqSeries("tftp", outcomeLocalBoot)] == 1 && m[reqSeries("http", outcomeLocalBoot)] == 1
	})
	if err := bootentry.RemoveInstalled(record); err != nil {
		t.Fatal(err)
	}
	b, _, err = tftpGet(f.tftpAddr(), script, 512, false)
	if err != nil {
		t.Fatal(err)
	}
	check(string(b), false)
}
