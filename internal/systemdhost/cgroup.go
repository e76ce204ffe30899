package systemdhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// cgroupMounts are where this machine mounts the hierarchies systemd
// tracks its units in: the named v1 hierarchy of a hybrid setup, and the
// unified (v2) one, at /sys/fs/cgroup/unified beside v1 controllers or at
// /sys/fs/cgroup alone.
func cgroupMounts() map[string]string {
	m := map[string]string{"name=systemd": "/sys/fs/cgroup/systemd", "": "/sys/fs/cgroup/unified"}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err != nil {
		m[""] = "/sys/fs/cgroup"
	}
	return m
}

// ownCgroups makes a cgroup named name below this process's own in each
// hierarchy systemd uses and returns their directories. systemd-nspawn
// --keep-unit makes its "payload" and "supervisor" groups inside the
// cgroup it starts in: containers started from one cgroup would share
// them, and their systemds would manage the same units' cgroups (units
// failed now and then with status 219/CGROUP).
func ownCgroups(name string) ([]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read this process's cgroups: %w", err)
	}
	defer f.Close()
	mounts := cgroupMounts()
	var dirs []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "9:name=systemd:/path" or "0::/path"
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		mount, ok := mounts[parts[1]]
		if !ok || (parts[1] == "" && parts[0] != "0") {
			continue
		}
		if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(mount, parts[2], name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			removeCgroups(context.Background(), dirs)
			return nil, fmt.Errorf("make the container's cgroup: %w", err)
		}
		dirs = append(dirs, dir)
	}
	if len(dirs) == 0 {
		return nil, errors.New("found no cgroup hierarchy of systemd's (name=systemd or cgroup2) among this process's cgroups")
	}
	return dirs, nil
}

// removeCgroups removes the cgroups and every group below them, deepest
// first; a group still holding processes is retried until ctx is done.
func removeCgroups(ctx context.Context, dirs []string) error {
	var errs []error
	for _, dir := range dirs {
		for {
			var sub []string
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					sub = append(sub, p)
				}
				return nil
			})
			sort.Slice(sub, func(i, j int) bool { return len(sub[i]) > len(sub[j]) })
			var last error
			for _, p := range sub {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					last = err
				}
			}
			if last == nil {
				break
			}
			select {
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, last))
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
	}
	return errors.Join(errs...)
}
