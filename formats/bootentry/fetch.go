package bootentry

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The fetch record of a version with an extra archive. PXE has no client
// authentication: anyone on the boot network who knows a MAC can ask for
// that machine's script and archive. So the archive is bound to one
// client, by its address, and every attempt to get it is written down,
// in the boot directory (not in a server's memory), so that several boot
// servers sharing the directory, and a restarted one, agree:
//
//	versions/<mac>/<version>/fetch/          mode 0770, made by Put
//	versions/<mac>/<version>/fetch/claim     the first client to fetch the script
//	versions/<mac>/<version>/fetch/events    one JSON line per later event
//	versions/<mac>/<version>/fetch/sealed    the archive is served to nobody
//
// The boot server writes claim (atomically, once: the first client to
// fetch the version's script) and events; it serves the archive only to
// the claim's address, and to nobody once sealed exists. nixos.host-key
// reads the record before it trusts the host key the archive carries, and
// writes sealed once it no longer needs the archive. The directory is
// group-writable because the boot server may run as another user than the
// one who writes the entries, in that user's group (see the README); the
// files in it are 0640.

// FetchDirName is the name of a version's fetch record directory.
const FetchDirName = "fetch"

const (
	claimName  = "claim"
	eventsName = "events"
	sealedName = "sealed"
	// fetchDirMode lets the boot server, in the group of the user who
	// writes the entries, create the record's files.
	fetchDirMode = 0o770
	// fetchFileMode lets that user read what the server wrote.
	fetchFileMode = 0o640
	// MaxFetchEvents bounds the events file: a client that asks for the
	// archive over and over cannot fill the disk. Past it, events are not
	// written and the archive is refused to everyone (ErrRecordFull).
	MaxFetchEvents = 256 << 10
	// maxEventLine bounds one event's line (its reason is the server's).
	maxEventLine = 1024
)

// Kinds of fetch events.
const (
	// EventScript: a client fetched the version's script. The first one
	// is the claim; later ones from other addresses are events.
	EventScript = "script"
	// EventServed: the archive was sent (or began to be) to the claimant.
	EventServed = "served"
	// EventRefused: the archive was refused; Reason says why.
	EventRefused = "refused"
)

var (
	// ErrNotClaimed: no client has fetched the version's script yet.
	ErrNotClaimed = errors.New("no client has fetched this version's script")
	// ErrRecordFull: the events file reached MaxFetchEvents.
	ErrRecordFull = errors.New("the fetch record is full")
)

// FetchEvent is one line of a fetch record: the claim or an event.
type FetchEvent struct {
	Kind string `json:"kind"`
	// Address is the client's IP address, without port.
	Address string `json:"address"`
	// Protocol is "tftp" or "http".
	Protocol string    `json:"protocol"`
	Time     time.Time `json:"time"`
	// Reason says why the archive was refused.
	Reason string `json:"reason,omitempty"`
}

// FetchDir returns the directory of the version's fetch record, or "" for
// a version without an extra archive.
func (v *Version) FetchDir() string {
	if !v.HasExtra {
		return ""
	}
	return filepath.Join(v.Dir, FetchDirName)
}

// FetchDirOf returns where Put puts the fetch record of a version with an
// extra archive.
func FetchDirOf(bootDir, mac, version string) string {
	return filepath.Join(bootDir, "versions", FileName(mac), version, FetchDirName)
}

// ensureFetchDir makes a version's fetch directory unless it is there.
func ensureFetchDir(dir string) error {
	err := os.Mkdir(dir, fetchDirMode)
	if errors.Is(err, fs.ErrExist) {
		return checkFetchDir(dir)
	}
	if err != nil {
		return fmt.Errorf("create fetch record directory %s: %w", dir, err)
	}
	// The umask does not get a say.
	if err := os.Chmod(dir, fetchDirMode); err != nil {
		return fmt.Errorf("set the mode of fetch record directory %s: %w", dir, err)
	}
	return nil
}

// checkFetchDir checks that dir is a directory and not a symlink, so
// nothing the record's writers open is somewhere else.
func checkFetchDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("fetch record %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("fetch record %s is not a directory (%s)", dir, fi.Mode().Type())
	}
	return nil
}

// writeNew writes a new file with O_EXCL and O_NOFOLLOW, mode
// fetchFileMode whatever the umask, and syncs it.
func writeNew(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, fetchFileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(fetchFileMode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readSmall reads a file of the record without following a symlink.
func readSmall(name string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// Claim records ev (a script fetch) as the version's claim unless a
// client claimed it before. It returns the claim in force and whether it
// is ev. The claim is written to a temporary file and linked into place,
// so a reader never sees it half written and two boot servers cannot both
// claim.
func Claim(dir string, ev FetchEvent) (FetchEvent, bool, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		// A version written before fetch records existed.
		if err := ensureFetchDir(dir); err != nil {
			return FetchEvent{}, false, err
		}
	}
	if err := checkFetchDir(dir); err != nil {
		return FetchEvent{}, false, err
	}
	if c, err := ReadClaim(dir); err == nil {
		return c, false, nil
	} else if !errors.Is(err, ErrNotClaimed) {
		return FetchEvent{}, false, err
	}
	ev.Kind = EventScript
	line, err := json.Marshal(ev)
	if err != nil {
		return FetchEvent{}, false, fmt.Errorf("encode the claim: %w", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+claimName+"-"+hex.EncodeToString(rnd[:]))
	if err := writeNew(tmp, append(line, '\n')); err != nil {
		_ = os.Remove(tmp)
		return FetchEvent{}, false, fmt.Errorf("write the claim in %s: %w", dir, err)
	}
	err = os.Link(tmp, filepath.Join(dir, claimName))
	_ = os.Remove(tmp)
	switch {
	case errors.Is(err, fs.ErrExist):
		c, err := ReadClaim(dir)
		return c, false, err
	case err != nil:
		return FetchEvent{}, false, fmt.Errorf("write the claim in %s: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return FetchEvent{}, false, fmt.Errorf("write the claim in %s: %w", dir, err)
	}
	return ev, true, nil
}

// ReadClaim returns the version's claim, or ErrNotClaimed.
func ReadClaim(dir string) (FetchEvent, error) {
	b, err := readSmall(filepath.Join(dir, claimName), 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return FetchEvent{}, fmt.Errorf("%s: %w", dir, ErrNotClaimed)
	}
	if err != nil {
		return FetchEvent{}, fmt.Errorf("read the claim in %s: %w", dir, err)
	}
	var c FetchEvent
	if err := json.Unmarshal(bytes.TrimSpace(b), &c); err != nil || c.Address == "" {
		return FetchEvent{}, fmt.Errorf("read the claim in %s: not a claim (%q)", dir, b)
	}
	return c, nil
}

// AppendEvent adds one event to the record. A full record (ErrRecordFull)
// takes no more events.
func AppendEvent(dir string, ev FetchEvent) error {
	if err := checkFetchDir(dir); err != nil {
		return err
	}
	if len(ev.Reason) > maxEventLine/2 {
		ev.Reason = ev.Reason[:maxEventLine/2] + "..."
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode a fetch event: %w", err)
	}
	name := filepath.Join(dir, eventsName)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, fetchFileMode)
	if err != nil {
		return fmt.Errorf("record a fetch in %s: %w", dir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("record a fetch in %s: %w", dir, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("record a fetch in %s: %s is not a regular file", dir, name)
	}
	if fi.Size()+int64(len(line))+1 > MaxFetchEvents {
		return fmt.Errorf("record a fetch in %s: %w (%d bytes)", dir, ErrRecordFull, fi.Size())
	}
	if fi.Mode().Perm() != fetchFileMode {
		// Made by us just now under a strict umask; one of another user
		// cannot be changed, and need not be.
		_ = f.Chmod(fetchFileMode)
	}
	// One write: appends of several servers do not interleave.
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("record a fetch in %s: %w", dir, err)
	}
	return nil
}

// SealedAt reports whether the version is sealed, and since when.
func SealedAt(dir string) (time.Time, bool, error) {
	b, err := readSmall(filepath.Join(dir, sealedName), 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read the seal in %s: %w", dir, err)
	}
	var s struct {
		Time time.Time `json:"time"`
	}
	// A seal that cannot be read is a seal all the same.
	_ = json.Unmarshal(bytes.TrimSpace(b), &s)
	return s.Time, true, nil
}

// Seal makes the boot server refuse the version's archive to everyone
// from now on. Sealing a sealed version changes nothing.
func Seal(dir string, at time.Time) error {
	if err := checkFetchDir(dir); err != nil {
		return err
	}
	b, err := json.Marshal(struct {
		Time time.Time `json:"time"`
	}{at.UTC()})
	if err != nil {
		return fmt.Errorf("encode the seal: %w", err)
	}
	err = writeNew(filepath.Join(dir, sealedName), append(b, '\n'))
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seal %s: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("seal %s: %w", dir, err)
	}
	return nil
}

// FetchRecord is a version's fetch record as read.
type FetchRecord struct {
	Dir string
	// Claim is the first client to fetch the script; nil if none did.
	Claim *FetchEvent
	// Events are the later events, in the order written.
	Events []FetchEvent
	// Sealed says whether the version is sealed, SealedAt since when.
	Sealed   bool
	SealedAt time.Time
	// Full says the events file reached MaxFetchEvents.
	Full bool
}

// ReadFetchRecord reads a version's fetch record. A line that is not an
// event is an error: the record is evidence, so nothing in it is skipped.
func ReadFetchRecord(dir string) (*FetchRecord, error) {
	if err := checkFetchDir(dir); err != nil {
		return nil, err
	}
	r := &FetchRecord{Dir: dir}
	c, err := ReadClaim(dir)
	switch {
	case err == nil:
		r.Claim = &c
	case !errors.Is(err, ErrNotClaimed):
		return nil, err
	}
	b, err := readSmall(filepath.Join(dir, eventsName), MaxFetchEvents+1)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the fetch events in %s: %w", dir, err)
	}
	// The server writes nothing once an event no longer fits, and no
	// event line is longer than maxEventLine.
	r.Full = len(b) > MaxFetchEvents-maxEventLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxFetchEvents+1)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev FetchEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Address == "" || ev.Kind == "" {
			return nil, fmt.Errorf("read the fetch events in %s: line %d is not an event: %q", dir, n, sc.Bytes())
		}
		r.Events = append(r.Events, ev)
	}
	if r.SealedAt, r.Sealed, err = SealedAt(dir); err != nil {
		return nil, err
	}
	return r, nil
}
