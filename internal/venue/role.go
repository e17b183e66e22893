package venue

import (
	"fmt"
	"strings"
)

// Role names a participant of the venue. Its engine NodeID is its index in
// Roles: matching is participant 0, the one whose YES vote carries the
// Outcome (engine.Config.Matching's zero value).
type Role int

// The venue's participants, in NodeID order.
const (
	Matching Role = iota
	Risk
	Settlement
)

// Roles lists every role in NodeID order, for building all participants.
var Roles = []Role{Matching, Risk, Settlement}

var roleNames = [...]string{Matching: "matching", Risk: "risk", Settlement: "settlement"}

// String returns "matching", "risk" or "settlement".
func (r Role) String() string {
	if r >= 0 && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole returns the role named s, as String writes it.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("venue: unknown role %q: want one of %s", s, strings.Join(roleNames[:], ", "))
}
