package pullauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Enrollment in a role. A machine holding the role's enrollment token
// proves it without sending the token: the proof is an HMAC, keyed with
// the token's enrollment key, over the role and the host's ID. The pull
// directory keeps only the enrollment key (not the token), and a proof
// overheard on the network enrolls nobody but the host it names, whose
// key signs the request too.

// EnrollKey is the key a token's proofs are made and checked with.
func EnrollKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("landscaper-pull-v1 enrollment key"))
	return m.Sum(nil)
}

// EnrollProof is a host's proof that it holds the token of the role.
func EnrollProof(enrollKey []byte, role, hostID string) string {
	m := hmac.New(sha256.New, enrollKey)
	m.Write([]byte("landscaper-pull-v1 enroll\n" + role + "\n" + hostID))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckEnrollProof reports whether proof is the host's proof for the
// role, in constant time.
func CheckEnrollProof(enrollKey []byte, role, hostID, proof string) bool {
	want := EnrollProof(enrollKey, role, hostID)
	return hmac.Equal([]byte(want), []byte(proof))
}
