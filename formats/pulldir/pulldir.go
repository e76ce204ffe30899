// Package pulldir is the pull directory's on-disk format: what the nixos
// provider's nixos.pull writes for each host (its desired generation),
// what `landscaper serve --pull-dir` reads and writes there (the keys it
// signs with, the hosts' reports, the nonces of signed requests), and how
// hosts are named in it. Every file is written whole (write, fsync,
// rename) and every decision that several servers could race on is an
// exclusive create, so any number of servers can share one directory.
//
//	DIR/server-key                 the server's SSH signing key (0600)
//	DIR/server.pub                 its public half, for the agents' --server-key
//	DIR/cache-key                  the binary cache's Nix signing key (0600)
//	DIR/cache.pub                  its public half, name:base64
//	DIR/hosts/<id>/host.pub        the host's SSH host key (authorized_keys form)
//	DIR/hosts/<id>/desired.json    its desired generation (Desired)
//	DIR/hosts/<id>/system          a GC root of the desired system
//	DIR/hosts/<id>/reports/*.json  its last reports (Report), oldest first by name
//	DIR/nonces/<minute>/<id>-<nonce>  nonces of signed requests, for a while
//	DIR/roles/<role>/...           roles of machines that enroll (roles.go)
package pulldir

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/internal/atomicfile"
)

// Dir is a pull directory.
type Dir struct {
	Path string
}

// KeepReports is how many reports per host the directory keeps.
const KeepReports = 20

// HostID names a host in the pull directory and in the API's paths: the
// unpadded base64url SHA-256 of its host key's wire form (the key's
// OpenSSH SHA256 fingerprint, in a form fit for file names and URLs).
func HostID(key ssh.PublicKey) string {
	sum := sha256.Sum256(key.Marshal())
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidID reports whether s has the form of a host ID (it may name no
// host).
func ValidID(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// ParseHostKey reads an ed25519 SSH host key in authorized_keys form
// ("ssh-ed25519 AAAA... [comment]"). Only ed25519 keys are hosts' keys
// here: secrets are encrypted to them with age.
func ParseHostKey(line string) (ssh.PublicKey, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("host key %q: %w", line, err)
	}
	if key.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("host key %q: type %s, want ssh-ed25519", line, key.Type())
	}
	return key, nil
}

// HealthCheck is one check of a newly activated system, as nixos.system
// takes it: a command run on the host (passes on exit 0) or a URL the
// agent fetches (passes on 2xx); durations in seconds.
type HealthCheck struct {
	Command  string  `json:"command,omitempty"`
	URL      string  `json:"url,omitempty"`
	Timeout  float64 `json:"timeout"`
	Retries  int     `json:"retries"`
	Interval float64 `json:"interval"`
}

// Secret is a file the agent writes on the host before it activates:
// Age is its contents, encrypted with age to the host's SSH key (armored).
type Secret struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
	Age  string `json:"age"`
}

// Desired is a host's desired generation.
type Desired struct {
	// Generation counts the host's desired systems, from 1; each change
	// of what the host should run is a new generation.
	Generation int64  `json:"generation"`
	Toplevel   string `json:"toplevel"`
	// HealthChecks run after `switch-to-configuration test`.
	HealthChecks []HealthCheck `json:"healthChecks"`
	// ConfirmTimeout is how many seconds the host has, after activating,
	// to reach the server over a new connection; else it re-activates
	// its previous system.
	ConfirmTimeout float64 `json:"confirmTimeout"`
	// ActivationTimeout bounds switch-to-configuration, in seconds.
	ActivationTimeout float64  `json:"activationTimeout"`
	Secrets           []Secret `json:"secrets"`
	PublishedAt       string   `json:"publishedAt"`
}

// Results a host reports.
const (
	// ResultActivated: the host runs the generation and boots it.
	ResultActivated = "activated"
	// ResultRolledBack: the activation failed and the host re-activated
	// its previous system.
	ResultRolledBack = "rolled-back"
	// ResultFetchFailed: the closure or the secrets could not be fetched;
	// nothing changed.
	ResultFetchFailed = "fetch-failed"
	// ResultFailed: the activation failed and the host could not go back
	// (no previous system, or the rollback failed too).
	ResultFailed = "failed"
)

// Report is what a host tells the server after a cycle that changed, or
// tried to change, what it runs.
type Report struct {
	Generation int64  `json:"generation"`
	Toplevel   string `json:"toplevel"`
	// Current, Profile and Booted are where /run/current-system, the
	// system profile and /run/booted-system point after the cycle.
	Current string `json:"current"`
	Profile string `json:"profile"`
	Booted  string `json:"booted"`
	Result  string `json:"result"`
	// Reason says why, for anything but activated.
	Reason string `json:"reason,omitempty"`
	// Log is the tail of the activation's output.
	Log string `json:"log,omitempty"`
	// Time is when the host made the report; ReceivedAt when the server
	// took it (the server sets it).
	Time       string `json:"time"`
	ReceivedAt string `json:"receivedAt,omitempty"`
}

func (d Dir) hostDir(id string) string { return filepath.Join(d.Path, "hosts", id) }

// Known reports whether the host has a directory: whether the server
// talks to it at all.
func (d Dir) Known(id string) bool {
	if !ValidID(id) {
		return false
	}
	_, err := os.Stat(filepath.Join(d.hostDir(id), "host.pub"))
	return err == nil
}

// Publish makes want the host's next generation and returns it as
// written: its generation is one more than the last one published.
// The caller (one nixos.pull member per host) is the only writer.
func (d Dir) Publish(hostKey ssh.PublicKey, want Desired) (Desired, error) {
	id := HostID(hostKey)
	dir := d.hostDir(id)
	if role, ok := d.HostRole(id); ok {
		return Desired{}, fmt.Errorf("pull dir: host %s enrolled in role %s; a host is either declared or enrolled", id, role)
	}
	if err := os.MkdirAll(filepath.Join(dir, "reports"), 0o755); err != nil {
		return Desired{}, fmt.Errorf("pull dir: make the directory of host %s: %w", id, err)
	}
	if err := writeFile(filepath.Join(dir, "host.pub"), ssh.MarshalAuthorizedKey(hostKey), 0o644); err != nil {
		return Desired{}, err
	}
	return publishNext(filepath.Join(dir, "desired.json"), want)
}

// publishNext writes want into path as the generation after the one
// there (the first when there is none) and returns it as written.
func publishNext(path string, want Desired) (Desired, error) {
	prev, ok, err := readDesired(path)
	if err != nil {
		return Desired{}, err
	}
	want.Generation = 1
	if ok {
		want.Generation = prev.Generation + 1
	}
	want.PublishedAt = time.Now().UTC().Format(time.RFC3339Nano)
	if err := writeDesired(path, want); err != nil {
		return Desired{}, err
	}
	return want, nil
}

// Desired reads the host's desired generation; false when none was
// published. A host enrolled in a role gets its own desired.json while a
// rollout put one there, else its role's.
func (d Dir) Desired(id string) (Desired, bool, error) {
	if !ValidID(id) {
		return Desired{}, false, fmt.Errorf("pull dir: %q is no host ID", id)
	}
	want, ok, err := readDesired(filepath.Join(d.hostDir(id), "desired.json"))
	if ok || err != nil {
		return want, ok, err
	}
	if role, isCattle := d.HostRole(id); isCattle {
		return d.RoleDesired(role)
	}
	return want, false, nil
}

// DesiredStamp is a cheap token that changes whenever the host's desired
// generation is written again (size, modification time and inode of the
// files it comes from): long-polls compare it without reading them.
func (d Dir) DesiredStamp(id string) string {
	stamp := fileStamp(filepath.Join(d.hostDir(id), "desired.json"))
	if role, isCattle := d.HostRole(id); isCattle {
		stamp += "/" + fileStamp(filepath.Join(d.roleDir(role), "desired.json"))
	}
	return stamp
}

func fileStamp(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return ""
	}
	ino := uint64(0)
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return fmt.Sprintf("%d-%d-%d", st.Size(), st.ModTime().UnixNano(), ino)
}

// SystemRoot is the GC root that keeps the host's desired system in the
// server's store.
func (d Dir) SystemRoot(id string) string { return filepath.Join(d.hostDir(id), "system") }

// Forget removes everything the directory holds for the host: the server
// no longer answers it.
func (d Dir) Forget(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("pull dir: %q is no host ID", id)
	}
	if err := os.RemoveAll(d.hostDir(id)); err != nil {
		return fmt.Errorf("pull dir: forget host %s: %w", id, err)
	}
	return nil
}

// AddReport records a host's report and drops all but the last
// KeepReports.
func (d Dir) AddReport(id string, r Report) error {
	if !ValidID(id) {
		return fmt.Errorf("pull dir: %q is no host ID", id)
	}
	dir := filepath.Join(d.hostDir(id), "reports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pull dir: report of host %s: %w", id, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%020d-%s.json", time.Now().UnixNano(), randomHex(4))
	if err := writeFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
		return err
	}
	names, err := reportNames(dir)
	if err != nil {
		return err
	}
	for len(names) > KeepReports {
		_ = os.Remove(filepath.Join(dir, names[0]))
		names = names[1:]
	}
	return nil
}

func reportNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pull dir: list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Reports are the host's kept reports, newest first.
func (d Dir) Reports(id string) ([]Report, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("pull dir: %q is no host ID", id)
	}
	dir := filepath.Join(d.hostDir(id), "reports")
	names, err := reportNames(dir)
	if err != nil {
		return nil, err
	}
	reports := make([]Report, 0, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(dir, names[i]))
		if errors.Is(err, fs.ErrNotExist) {
			continue // dropped by a newer report meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("pull dir: read report %s: %w", names[i], err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("pull dir: decode report %s: %w", names[i], err)
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// ClaimNonce records a signed request's nonce; it returns false when the
// nonce was claimed before (a replay). Nonces are kept in buckets by
// minute; buckets older than keep are removed.
func (d Dir) ClaimNonce(id, nonce string, at time.Time, keep time.Duration) (bool, error) {
	if !ValidID(id) || nonce == "" || strings.ContainsAny(nonce, "/.\x00") {
		return false, fmt.Errorf("pull dir: bad host ID or nonce")
	}
	root := filepath.Join(d.Path, "nonces")
	minute := at.Unix() / 60
	bucket := filepath.Join(root, strconv.FormatInt(minute, 10))
	if err := os.MkdirAll(bucket, 0o700); err != nil {
		return false, fmt.Errorf("pull dir: nonce bucket: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(bucket, id+"-"+nonce), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pull dir: claim nonce: %w", err)
	}
	f.Close()
	d.pruneNonces(root, minute-int64(keep/time.Minute)-1)
	return true, nil
}

// pruneNonces removes the nonce buckets of minutes before oldest.
func (d Dir) pruneNonces(root string, oldest int64) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if m, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && m < oldest {
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// writeFile writes a file whole, with exactly its mode (atomicfile).
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("pull dir: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
