package testhost

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// firstUID is where the IDs of a host's users start; IDs this machine
// uses already are skipped.
const firstUID = 62000

var userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)

// setUpUsers writes the files that give a host its users, in dir/etc
// (passwd, group: this machine's with the users added; sudoers), their
// homes in dir/run/home and their authorized_keys, and returns the shell
// lines that bind-mount the files over /etc in the host's namespace ("" for
// no users).
func setUpUsers(dir string, users []User) (string, error) {
	if len(users) == 0 {
		return "", nil
	}
	seen := map[string]bool{}
	needSudo := false
	for _, u := range users {
		switch {
		case !userName.MatchString(u.Name) || u.Name == "root":
			return "", fmt.Errorf("stand-in host user %q: want a login name other than root (lower-case letters, digits, _ and -)", u.Name)
		case seen[u.Name]:
			return "", fmt.Errorf("stand-in host user %q is given twice", u.Name)
		}
		seen[u.Name] = true
		needSudo = needSudo || u.Sudo
	}
	haveSudo := false
	if _, err := os.Stat("/etc/sudoers"); err == nil {
		if _, err := exec.LookPath("sudo"); err == nil {
			haveSudo = true
		}
	}
	if needSudo && !haveSudo {
		return "", fmt.Errorf("a stand-in host with a sudo user needs sudo (/usr/bin/sudo and /etc/sudoers): install Debian's sudo package (scripts/install-deps.sh installs it)")
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", fmt.Errorf("read this machine's users: %w", err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		return "", fmt.Errorf("read this machine's groups: %w", err)
	}
	used := map[int]bool{}
	for _, file := range [][]byte{passwd, group} {
		sc := bufio.NewScanner(bytes.NewReader(file))
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) < 3 {
				continue
			}
			if fields[0] != "" && seen[fields[0]] {
				return "", fmt.Errorf("stand-in host user %q: this machine has a user or group of that name already", fields[0])
			}
			if id, err := strconv.Atoi(fields[2]); err == nil {
				used[id] = true
			}
		}
	}
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return "", err
	}
	passwd = append(bytes.TrimRight(passwd, "\n"), '\n')
	group = append(bytes.TrimRight(group, "\n"), '\n')
	// Only root, and the users with Sudo: none of this machine's sudoers
	// rules (its %sudo group, /etc/sudoers.d) reaches the host.
	sudoers := "Defaults env_reset\nDefaults secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\nroot ALL=(ALL:ALL) ALL\n"
	id := firstUID
	for _, u := range users {
		for used[id] {
			id++
		}
		used[id] = true
		home := filepath.Join(dir, "run", "home", u.Name)
		if err := os.MkdirAll(home, 0o755); err != nil {
			return "", err
		}
		if err := os.Chown(home, id, id); err != nil {
			return "", fmt.Errorf("home of stand-in host user %s: %w", u.Name, err)
		}
		// The password field "*": no password, and not a locked account
		// (sshd refuses "!"), so the user logs in with a key only and
		// PAM's account check for sudo looks no further.
		passwd = fmt.Appendf(passwd, "%s:*:%d:%d:stand-in host user:/run/home/%s:/bin/sh\n", u.Name, id, id, u.Name)
		group = fmt.Appendf(group, "%s:x:%d:\n", u.Name, id)
		if u.Sudo {
			sudoers += u.Name + " ALL=(ALL:ALL) NOPASSWD: ALL\n"
		}
		keys := filepath.Join(dir, "etc-ssh", "authorized_keys", u.Name)
		if err := os.WriteFile(keys, []byte(u.AuthorizedKeys), 0o644); err != nil {
			return "", err
		}
	}
	type etcFile struct {
		name    string
		content []byte
		mode    os.FileMode
	}
	files := []etcFile{{"passwd", passwd, 0o644}, {"group", group, 0o644}}
	if haveSudo {
		// sudo refuses a sudoers file that others can write.
		files = append(files, etcFile{"sudoers", []byte(sudoers), 0o440})
	}
	var mounts strings.Builder
	for _, f := range files {
		p := filepath.Join(etc, f.name)
		if err := os.WriteFile(p, f.content, f.mode); err != nil {
			return "", err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return "", err
		}
		fmt.Fprintf(&mounts, "mount --bind %s /etc/%s\n", p, f.name)
	}
	return mounts.String(), nil
}
