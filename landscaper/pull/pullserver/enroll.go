package pullserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

// enrollRole returns the role of an enrollment path ("roles/<role>/enroll").
func enrollRole(rest string) (string, bool) {
	role, ok := strings.CutPrefix(rest, "roles/")
	if !ok {
		return "", false
	}
	role, ok = strings.CutSuffix(role, "/enroll")
	return role, ok && pulldir.ValidRole(role) == nil
}

// serveEnroll enrolls the signing host in the role when its proof shows
// it holds the role's token. A wrong proof is refused and counted
// (bad-token); so are a role the directory does not have (unknown-role)
// and a host of another role (enrolled-elsewhere).
func (s *Server) serveEnroll(w http.ResponseWriter, r *http.Request, req *request, role string) {
	req.endpoint = "enroll"
	if r.Method != http.MethodPost {
		req.outcome = refusedBadRequest
		http.Error(w, "enroll: POST only", http.StatusMethodNotAllowed)
		return
	}
	body, caller, ok := s.readSigned(w, r, req, 4096)
	if !ok {
		return
	}
	var er pullapi.EnrollRequest
	if err := json.Unmarshal(body, &er); err != nil || er.Proof == "" {
		req.outcome = refusedBadRequest
		http.Error(w, "enroll: want {\"proof\": ...}", http.StatusBadRequest)
		return
	}
	key, err := s.cfg.Dir.RoleEnrollKey(role)
	if errors.Is(err, pulldir.ErrUnknownRole) {
		req.outcome = refusedUnknownRole
		http.Error(w, "refused: unknown role", http.StatusNotFound)
		return
	}
	if err != nil {
		req.outcome = "error"
		s.log.Error("enroll: read the role's key", "role", role, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !pullauth.CheckEnrollProof(key, role, caller.ID, er.Proof) {
		req.outcome = refusedBadToken
		http.Error(w, "refused: wrong enrollment token", http.StatusForbidden)
		return
	}
	hostKey := caller.Key
	added, err := s.cfg.Dir.Enroll(role, hostKey, time.Now())
	switch {
	case errors.Is(err, pulldir.ErrEnrolledElsewhere):
		req.outcome = refusedEnrolledElsewhere
		http.Error(w, "refused: this host belongs to another role or is declared by nixos.pull", http.StatusConflict)
		return
	case errors.Is(err, pulldir.ErrUnknownRole):
		req.outcome = refusedUnknownRole
		http.Error(w, "refused: unknown role", http.StatusNotFound)
		return
	case err != nil:
		req.outcome = "error"
		s.log.Error("enroll", "role", role, "host", caller.ID, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if added {
		s.log.Info("host enrolled", "role", role, "host", caller.ID, "fingerprint", ssh.FingerprintSHA256(hostKey))
	}
	w.WriteHeader(http.StatusNoContent)
}
