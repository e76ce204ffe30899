package pulldir

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Roles: cattle. A role (nixos.pull-role) is a system any machine holding
// the role's enrollment token can take. Its files:
//
//	DIR/roles/<role>/enroll.key     the key enrollment proofs are checked with (hex, 0600)
//	DIR/roles/<role>/target.json    the generation being rolled out (Desired)
//	DIR/roles/<role>/desired.json   the generation every host of the role runs unless told otherwise
//	DIR/roles/<role>/system         a GC root of desired.json's system
//	DIR/roles/<role>/target         a GC root of target.json's system
//	DIR/hosts/<id>/role             the role an enrolled host belongs to (written once)
//	DIR/hosts/<id>/enrolled.json    when and in which role it enrolled
//	DIR/hosts/<id>/seen             touched when the host asks for its generation (at most twice a minute)
//
// An enrolled host is a host of the directory like any other (host.pub,
// reports); its desired generation is its own desired.json while a
// rollout has put it there, else its role's desired.json.

// ErrUnknownRole is a role the directory does not have.
var ErrUnknownRole = errors.New("unknown role")

// ErrEnrolledElsewhere is a host that enrolled in another role, or that a
// nixos.pull member declared: it cannot enroll (again) in this one.
var ErrEnrolledElsewhere = errors.New("the host belongs to another role or is declared by nixos.pull")

var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidRole says what is wrong with a role's name, or nothing: 1 to 63
// lowercase letters, digits, '.', '_' and '-', starting with a letter or
// a digit (it is a directory name and a path element of the API).
func ValidRole(name string) error {
	if !roleName.MatchString(name) {
		return fmt.Errorf("role %q: want 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit", name)
	}
	return nil
}

func (d Dir) roleDir(role string) string { return filepath.Join(d.Path, "roles", role) }

// RoleSystemRoot and RoleTargetRoot are the GC roots of the role's
// desired system and of the one being rolled out.
func (d Dir) RoleSystemRoot(role string) string { return filepath.Join(d.roleDir(role), "system") }
func (d Dir) RoleTargetRoot(role string) string { return filepath.Join(d.roleDir(role), "target") }

// SetRoleEnrollKey makes the role exist, with the key enrollment proofs
// are checked with.
func (d Dir) SetRoleEnrollKey(role string, key []byte) error {
	if err := ValidRole(role); err != nil {
		return fmt.Errorf("pull dir: %w", err)
	}
	if err := os.MkdirAll(d.roleDir(role), 0o755); err != nil {
		return fmt.Errorf("pull dir: make the directory of role %s: %w", role, err)
	}
	return writeFile(filepath.Join(d.roleDir(role), "enroll.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600)
}

// RoleEnrollKey reads the role's enrollment key; ErrUnknownRole when the
// directory has no such role.
func (d Dir) RoleEnrollKey(role string) ([]byte, error) {
	if ValidRole(role) != nil {
		return nil, ErrUnknownRole
	}
	b, err := os.ReadFile(filepath.Join(d.roleDir(role), "enroll.key"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrUnknownRole
	}
	if err != nil {
		return nil, fmt.Errorf("pull dir: read the enrollment key of role %s: %w", role, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("pull dir: the enrollment key of role %s is damaged", role)
	}
	return key, nil
}

func readDesired(p string) (Desired, bool, error) {
	var want Desired
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return want, false, nil
	}
	if err != nil {
		return want, false, fmt.Errorf("pull dir: read %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		return want, false, fmt.Errorf("pull dir: decode %s: %w", p, err)
	}
	return want, true, nil
}

func writeDesired(p string, want Desired) error {
	b, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		return err
	}
	// Secrets are encrypted, but only hosts and servers need them.
	return writeFile(p, append(b, '\n'), 0o640)
}

// RoleTarget is the role's latest generation (the one being or last
// rolled out); false before the first.
func (d Dir) RoleTarget(role string) (Desired, bool, error) {
	return readDesired(filepath.Join(d.roleDir(role), "target.json"))
}

// RoleDesired is the generation the role's hosts run unless a rollout
// told one otherwise; false before the first rollout ended.
func (d Dir) RoleDesired(role string) (Desired, bool, error) {
	return readDesired(filepath.Join(d.roleDir(role), "desired.json"))
}

// SetRoleTarget makes want the role's next generation (one more than the
// last one, whether its rollout ended or not) and returns it as written.
// The caller (the role's one nixos.pull-role member) is the only writer.
func (d Dir) SetRoleTarget(role string, want Desired) (Desired, error) {
	if err := ValidRole(role); err != nil {
		return Desired{}, fmt.Errorf("pull dir: %w", err)
	}
	return publishNext(filepath.Join(d.roleDir(role), "target.json"), want)
}

// SetRoleDesired makes gen what every host of the role runs (a rollout
// ended, or the role has no hosts to roll out to).
func (d Dir) SetRoleDesired(role string, gen Desired) error {
	return writeDesired(filepath.Join(d.roleDir(role), "desired.json"), gen)
}

// SetHostDesired puts an enrolled host on gen ahead of its role (a batch
// of a rollout).
func (d Dir) SetHostDesired(id string, gen Desired) error {
	if !ValidID(id) {
		return fmt.Errorf("pull dir: %q is no host ID", id)
	}
	return writeDesired(filepath.Join(d.hostDir(id), "desired.json"), gen)
}

// ClearHostDesired makes an enrolled host follow its role again.
func (d Dir) ClearHostDesired(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("pull dir: %q is no host ID", id)
	}
	for _, p := range []string{filepath.Join(d.hostDir(id), "desired.json"), d.SystemRoot(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pull dir: %w", err)
		}
	}
	return nil
}

// HostRole is the role the host enrolled in; false for a host that did
// not enroll (declared by nixos.pull, or unknown).
func (d Dir) HostRole(id string) (string, bool) {
	if !ValidID(id) {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(d.hostDir(id), "role"))
	if err != nil {
		return "", false
	}
	role := strings.TrimSpace(string(b))
	if ValidRole(role) != nil {
		return "", false
	}
	return role, true
}

// Enrolled is what the directory knows of a host of a role.
type Enrolled struct {
	ID         string    `json:"id"`
	HostKey    string    `json:"hostKey"`
	Role       string    `json:"role"`
	EnrolledAt time.Time `json:"enrolledAt"`
	// LastSeen is when the host last asked for its generation (to within
	// SeenEvery); its enrollment time before it asked.
	LastSeen time.Time `json:"-"`
}

// Enroll makes the host a host of the role. It is idempotent for a host
// already in the role (false, nil) and refuses one of another role or
// one declared by nixos.pull (ErrEnrolledElsewhere). Servers racing to
// enroll one host agree on the first role written.
func (d Dir) Enroll(role string, key ssh.PublicKey, now time.Time) (bool, error) {
	if _, err := d.RoleEnrollKey(role); err != nil {
		return false, err
	}
	id := HostID(key)
	dir := d.hostDir(id)
	if err := os.MkdirAll(filepath.Join(dir, "reports"), 0o755); err != nil {
		return false, fmt.Errorf("pull dir: make the directory of host %s: %w", id, err)
	}
	// The role file is linked into place: it exists whole or not at all,
	// and only the first of racing enrollments makes it.
	tmp := filepath.Join(dir, ".role."+randomHex(6))
	if err := writeFile(tmp, []byte(role+"\n"), 0o644); err != nil {
		return false, err
	}
	err := os.Link(tmp, filepath.Join(dir, "role"))
	os.Remove(tmp)
	switch {
	case errors.Is(err, fs.ErrExist):
		if got, ok := d.HostRole(id); !ok || got != role {
			return false, ErrEnrolledElsewhere
		}
	case err != nil:
		return false, fmt.Errorf("pull dir: enroll host %s: %w", id, err)
	default:
		if _, err := os.Stat(filepath.Join(dir, "host.pub")); err == nil {
			// A host nixos.pull declared: it is not cattle.
			os.Remove(filepath.Join(dir, "role"))
			return false, ErrEnrolledElsewhere
		}
	}
	// An enrollment cut short (a server stopped between the files) is
	// finished by the next one.
	if _, err := os.Stat(filepath.Join(dir, "host.pub")); err == nil {
		return false, nil
	}
	e := Enrolled{ID: id, HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), Role: role, EnrolledAt: now.UTC()}
	b, _ := json.MarshalIndent(e, "", "  ")
	if err := writeFile(filepath.Join(dir, "enrolled.json"), append(b, '\n'), 0o644); err != nil {
		return false, err
	}
	// host.pub last: the server answers the host once it exists.
	if err := writeFile(filepath.Join(dir, "host.pub"), ssh.MarshalAuthorizedKey(key), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// SeenEvery is how stale a host's "seen" mark may get before a request
// touches it again: a host asking every second costs a write every
// SeenEvery, not every request.
const SeenEvery = 30 * time.Second

// MarkSeen records that the host asked for its generation now.
func (d Dir) MarkSeen(id string, now time.Time) {
	if !ValidID(id) {
		return
	}
	p := filepath.Join(d.hostDir(id), "seen")
	st, err := os.Stat(p)
	if err == nil && now.Sub(st.ModTime()) < SeenEvery {
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	_ = os.Chtimes(p, now, now)
}

// RoleHosts lists the hosts enrolled in the role, by enrollment time.
func (d Dir) RoleHosts(role string) ([]Enrolled, error) {
	entries, err := os.ReadDir(filepath.Join(d.Path, "hosts"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pull dir: list hosts: %w", err)
	}
	var out []Enrolled
	for _, e := range entries {
		id := e.Name()
		if got, ok := d.HostRole(id); !ok || got != role {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.hostDir(id), "enrolled.json"))
		if err != nil {
			continue // enrolling right now
		}
		var h Enrolled
		if json.Unmarshal(b, &h) != nil || h.ID != id {
			continue
		}
		if _, err := os.Stat(filepath.Join(d.hostDir(id), "host.pub")); err != nil {
			continue
		}
		h.LastSeen = h.EnrolledAt
		if st, err := os.Stat(filepath.Join(d.hostDir(id), "seen")); err == nil && st.ModTime().After(h.LastSeen) {
			h.LastSeen = st.ModTime().UTC()
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].EnrolledAt.Equal(out[j].EnrolledAt) {
			return out[i].EnrolledAt.Before(out[j].EnrolledAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ForgetRole removes the role and every host enrolled in it: the server
// no longer answers them, and they keep running what they run.
func (d Dir) ForgetRole(role string) error {
	if err := ValidRole(role); err != nil {
		return fmt.Errorf("pull dir: %w", err)
	}
	// The role first: no host can enroll while its hosts go.
	if err := os.RemoveAll(d.roleDir(role)); err != nil {
		return fmt.Errorf("pull dir: forget role %s: %w", role, err)
	}
	hosts, err := d.RoleHosts(role)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if err := d.Forget(h.ID); err != nil {
			return err
		}
	}
	return nil
}
