package systemdhost

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBootAndClose boots containers at once: systemd is PID 1 in each,
// running with no failed unit, sshd answers; a cut link drops the traffic
// and a restored one carries it again; once closed nothing is left: no
// process, mount, interface or directory.
func TestBootAndClose(t *testing.T) {
	RequireTools(t)
	rootfs := RootFS(t)
	const n = 3
	containers := make([]*Container, n)
	var wg sync.WaitGroup
	for i := range containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
			defer cancel()
			c, err := boot(ctx, t, rootfs, Options{})
			containers[i] = c
			if err != nil {
				t.Errorf("boot %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range containers {
			if c != nil {
				c.Close()
			}
		}
	}()
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range containers {
		if out, err := c.Exec(ctx, "cat /proc/1/comm; systemctl is-system-running"); err != nil || strings.Fields(out)[0] != "systemd" || !strings.Contains(out, "running") {
			t.Errorf("%s: PID 1 and state %q, %v; want systemd, running", c.Name, out, err)
		}
	}

	c := containers[0]
	addr := net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
	if err := c.CutNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("connected to %s through a cut link", addr)
	}
	// The route to the container stays on its link (packets are dropped
	// there, they do not leave by the default route).
	if out, err := exec.CommandContext(ctx, "ip", "-o", "route", "get", c.Address).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev "+c.hostIf) {
		t.Errorf("route to %s while cut: %s %v; want it on %s", c.Address, out, err, c.hostIf)
	}
	if err := c.RestoreNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.waitSSH(ctx); err != nil {
		t.Errorf("after the link was restored: %v", err)
	}

	for _, c := range containers {
		leader, root, dir, hostIf, cgroups := c.leader, c.Root(), c.Dir, c.hostIf, c.cgroups
		if len(cgroups) == 0 {
			t.Errorf("%s has no cgroup of its own", c.Name)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", c.Name, err)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(leader)); err == nil {
			t.Errorf("%s: its PID 1 (%d here) is still there", c.Name, leader)
		}
		if mounted(root) {
			t.Errorf("%s: %s is still mounted", c.Name, root)
		}
		if _, err := net.InterfaceByName(hostIf); err == nil {
			t.Errorf("%s: interface %s is still there", c.Name, hostIf)
		}
		for _, d := range append(cgroups, dir) {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("%s: %s is still there", c.Name, d)
			}
		}
	}
	containers = nil
}
