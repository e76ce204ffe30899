// Package pullapi names the pull API's paths and the documents its
// answers carry, shared by the server and its clients.
package pullapi

import "github.com/landscaper-nix/landscaper/formats/pulldir"

// Prefix is where the API is mounted on the server's HTTP listener.
const Prefix = "/pull/v1/"

// HostPrefix is the path under which everything of one host is.
func HostPrefix(id string) string { return Prefix + "hosts/" + id + "/" }

// DesiredPath is the path of the host's desired generation.
func DesiredPath(id string) string { return HostPrefix(id) + "desired" }

// ReportPath is the path hosts post their reports to.
func ReportPath(id string) string { return HostPrefix(id) + "report" }

// CachePath is the base path of the host's binary cache.
func CachePath(id string) string { return HostPrefix(id) + "cache" }

// DesiredAnswer is the signed body of the desired generation's path.
type DesiredAnswer struct {
	// Desired is nil while nothing was published for the host.
	Desired *pulldir.Desired `json:"desired"`
	// CachePublicKey is the key the binary cache signs with, in Nix's
	// form, for the host's trusted-public-keys.
	CachePublicKey string `json:"cachePublicKey"`
}

// EnrollPath is where a machine enrolls in a role (POST, EnrollRequest).
func EnrollPath(role string) string { return Prefix + "roles/" + role + "/enroll" }

// EnrollRequest is the body of an enrollment: the proof that the
// machine holds the role's token (pullauth.EnrollProof).
type EnrollRequest struct {
	Proof string `json:"proof"`
}
