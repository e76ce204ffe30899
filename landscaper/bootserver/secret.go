package bootserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
)

// A version's extra archive (extra.cpio) holds that machine's secrets,
// such as the installer's temporary SSH host key. PXE has no client
// authentication, so the server cannot know which client is the machine.
// It binds the archive to the first client that fetches the version's
// script (the claim, written in the version's fetch record in the boot
// directory, see bootentry.Claim), serves the archive to that address
// only, and refuses it to everyone once the version is sealed. Every
// serving and every refusal is written to the record, where
// nixos.host-key reads it before it trusts the key; each refusal is also
// logged at level ERROR (WARN for the claimant asking for a sealed
// archive, as a machine does that boots from the network again after its
// installation) and counted in landscaper_boot_secret_refused_total.

// errRefused is what a client refused the archive is told.
var errRefused = errors.New("access refused: this file is served to one client only")

// Why an archive was refused: the reason label of
// landscaper_boot_secret_refused_total.
const (
	// refusedOtherClient: another client fetched the version's script
	// first, and the archive is bound to it.
	refusedOtherClient = "other_client"
	// refusedUnclaimed: no client fetched the version's script yet; the
	// archive is only for the one that does.
	refusedUnclaimed = "unclaimed"
	// refusedSealed: the host key was rotated; nobody gets the archive.
	refusedSealed = "sealed"
	// refusedRecord: the fetch record could not be read or written, so
	// the server cannot tell who may have the archive.
	refusedRecord = "record_error"
)

var refusalReasons = []string{refusedOtherClient, refusedUnclaimed, refusedSealed, refusedRecord}

// clientAddr is the IP address of a client's "host:port", without an
// IPv4-in-IPv6 prefix or zone, or "" when it cannot be read.
func clientAddr(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return ""
	}
	return ap.Addr().Unmap().WithZone("").String()
}

// fetchEvent is the record of this request for the fetch record.
func (rec *record) fetchEvent(kind string) bootentry.FetchEvent {
	return bootentry.FetchEvent{Kind: kind, Address: clientAddr(rec.remote), Protocol: rec.protocol, Time: time.Now().UTC()}
}

// noteScript writes down that the request's client fetched v's script:
// the first one claims v's archive; any other address is an event. The
// script is served either way (it holds no secret); what could not be
// written is logged, and the archive is then refused.
func (s *Server) noteScript(v *bootentry.Version, rec *record) {
	dir := v.FetchDir()
	if dir == "" || v.MAC == bootentry.DefaultKey {
		return
	}
	ev := rec.fetchEvent(bootentry.EventScript)
	if ev.Address == "" {
		rec.attrs = append(rec.attrs, slog.String("fetch_record_error", "no client address: the archive will be refused"))
		return
	}
	claim, fresh, err := bootentry.Claim(dir, ev)
	switch {
	case err != nil:
		rec.level = slog.LevelError
		rec.attrs = append(rec.attrs, slog.String("fetch_record_error", err.Error()+"; the archive will be refused"))
	case fresh:
		rec.attrs = append(rec.attrs, slog.String("claimed_by", ev.Address))
	case claim.Address != ev.Address:
		rec.level = slog.LevelWarn
		rec.attrs = append(rec.attrs,
			slog.String("claimed_by", claim.Address),
			slog.Time("claimed_at", claim.Time),
			slog.String("reason", "another client fetched this version's script first; this one will be refused the archive"))
		if err := bootentry.AppendEvent(dir, ev); err != nil {
			rec.attrs = append(rec.attrs, slog.String("fetch_record_error", err.Error()))
		}
	}
}

// guardArchive decides whether the request's client may have v's
// archive, and writes the decision into v's fetch record. It returns nil
// (served, and written down) or an error wrapping errRefused.
func (s *Server) guardArchive(v *bootentry.Version, rec *record) error {
	dir := v.FetchDir()
	addr := clientAddr(rec.remote)
	refuse := func(reason string, alarm bool, why string) error {
		rec.refusal = reason
		rec.level = slog.LevelWarn
		if alarm {
			rec.level = slog.LevelError
			rec.attrs = append(rec.attrs, slog.Bool("alarm", true))
		}
		ev := rec.fetchEvent(bootentry.EventRefused)
		ev.Reason = why
		if addr != "" {
			if err := bootentry.AppendEvent(dir, ev); err != nil {
				rec.attrs = append(rec.attrs, slog.String("fetch_record_error", err.Error()))
			}
		}
		return fmt.Errorf("%w: %s", errRefused, why)
	}
	if addr == "" {
		return refuse(refusedRecord, true, fmt.Sprintf("the client address %q cannot be read", rec.remote))
	}
	if v.MAC == bootentry.DefaultKey {
		// The default entry's archive is for every machine without an
		// entry (a role's enrollment token, say): served to anyone,
		// and written down.
		if err := bootentry.AppendEvent(dir, rec.fetchEvent(bootentry.EventServed)); err != nil {
			return refuse(refusedRecord, true, "the serving cannot be recorded: "+err.Error())
		}
		return nil
	}
	sealedAt, sealed, err := bootentry.SealedAt(dir)
	if err != nil {
		return refuse(refusedRecord, true, err.Error())
	}
	claim, claimErr := bootentry.ReadClaim(dir)
	if claimErr == nil {
		rec.attrs = append(rec.attrs, slog.String("claimed_by", claim.Address), slog.Time("claimed_at", claim.Time))
	}
	switch {
	case sealed:
		// The claimant asking again is the machine booting from the
		// network after its installation: refused, but no alarm.
		return refuse(refusedSealed, claimErr != nil || claim.Address != addr,
			fmt.Sprintf("sealed at %s: the host key it carries was replaced, so it is served to nobody", sealedAt.Format(time.RFC3339)))
	case errors.Is(claimErr, bootentry.ErrNotClaimed):
		return refuse(refusedUnclaimed, true, "no client fetched this version's script: the archive is served only to the first one that does")
	case claimErr != nil:
		return refuse(refusedRecord, true, claimErr.Error())
	case claim.Address != addr:
		return refuse(refusedOtherClient, true, fmt.Sprintf("%s fetched this version's script first, at %s (%s): the archive is bound to it", claim.Address, claim.Time.Format(time.RFC3339Nano), claim.Protocol))
	}
	// Written before a byte is sent: whoever has the archive is in the
	// record by the time its host key can answer.
	if err := bootentry.AppendEvent(dir, rec.fetchEvent(bootentry.EventServed)); err != nil {
		return refuse(refusedRecord, true, "the serving cannot be recorded: "+err.Error())
	}
	return nil
}
