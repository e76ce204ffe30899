package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// claimKey is a claim as the engine compares it: per provider, since each
// provider names what its resources own in its own words.
type claimKey struct {
	provider string
	claim    string
}

// claimsOf collects what the planned members claim, refusing a claim made
// by two members (a machine with two boot entries, say): the error names
// both members and the claim. Members being deleted claim nothing.
func claimsOf(changes []*Change) (map[claimKey]string, error) {
	owners := map[claimKey]string{}
	var clashes []string
	for _, c := range changes {
		if c.Action == resource.ActionDelete {
			continue
		}
		for _, claim := range c.Claims {
			k := claimKey{c.Provider, claim}
			if other, taken := owners[k]; taken && other != c.Member {
				clashes = append(clashes, clash(other, c.Member, claim))
				continue
			}
			owners[k] = c.Member
		}
	}
	if len(clashes) > 0 {
		sort.Strings(clashes)
		return nil, fmt.Errorf("%s", strings.Join(clashes, "\n"))
	}
	return owners, nil
}

// checkClaim refuses a change planned during apply (with inputs known only
// then) that claims what another member of the plan claims.
func checkClaim(owners map[claimKey]string, c *Change) error {
	for _, claim := range c.Claims {
		if other, taken := owners[claimKey{c.Provider, claim}]; taken && other != c.Member {
			return fmt.Errorf("%s", clash(other, c.Member, claim))
		}
	}
	return nil
}

func clash(a, b, claim string) string {
	if b < a {
		a, b = b, a
	}
	return fmt.Sprintf("members %s and %s both claim the %s; a deployment may have only one member for it", a, b, claim)
}
