package agents

import (
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Limits on agent and group input. They are exported so the HTTP layer and
// the API description can quote the same numbers.
const (
	MinPasswordLen = 8
	// MaxPasswordBytes is bcrypt's limit: longer passwords would be cut
	// silently by other implementations and are refused by x/crypto.
	MaxPasswordBytes = 72
	MinMaxSessions   = 1
	MaxMaxSessions   = 50
	MinProficiency   = 1
	MaxProficiency   = 5
	MaxNameLen       = 200 // display names, group and tenant names, labels (in characters)
	MaxIDLen         = 64  // tenant, agent and group ids

	// DefaultMaxSessions is what a new agent gets when none is given; it
	// matches the schema default.
	DefaultMaxSessions = 3
	// DefaultStrategy is the strategy of a group created without one.
	DefaultStrategy = "longest_idle"
	// DefaultSLThresholdSec is the usual 20-second service-level target.
	DefaultSLThresholdSec = 20
)

// strategies are the agent-selection strategy names a group may carry
// (DESIGN §5). The acd package decides which of them it implements; this
// list only keeps typos out of the configuration.
var strategies = []string{"fifo", "longest_idle", "round_robin", "least_busy", "weighted", "sticky", "skills"}

// Strategies returns the strategy names a group may carry, for forms and
// API descriptions.
func Strategies() []string { return append([]string(nil), strategies...) }

var (
	usernameRE = regexp.MustCompile(`^[a-z0-9_.-]{2,64}$`)
	idRE       = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// ValidateUsername checks a login name: 2–64 of [a-z0-9_.-], so names are
// unambiguous in URLs, logs and across case.
func ValidateUsername(username string) error {
	if !usernameRE.MatchString(username) {
		return errs.E("agents.ValidateUsername", errs.Invalid, "username: must be 2-64 characters of a-z, 0-9, '_', '.', '-'")
	}
	return nil
}

// ValidatePassword checks a new password: at least MinPasswordLen
// characters and at most MaxPasswordBytes bytes (bcrypt's limit).
func ValidatePassword(password string) error {
	const op = "agents.ValidatePassword"
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return errs.E(op, errs.Invalid, "password: must be at least %d characters", MinPasswordLen)
	}
	if len(password) > MaxPasswordBytes {
		return errs.E(op, errs.Invalid, "password: must be at most %d bytes", MaxPasswordBytes)
	}
	return nil
}

// ValidateMaxSessions checks an agent's capacity: 1..50.
func ValidateMaxSessions(n int) error {
	if n < MinMaxSessions || n > MaxMaxSessions {
		return errs.E("agents.ValidateMaxSessions", errs.Invalid, "max_sessions: must be between %d and %d", MinMaxSessions, MaxMaxSessions)
	}
	return nil
}

// ValidateSkills checks a skill list: each names a group once with a
// proficiency of 1..5.
func ValidateSkills(skills []Skill) error {
	const op = "agents.ValidateSkills"
	seen := make(map[string]bool, len(skills))
	for i, s := range skills {
		if !idRE.MatchString(s.GroupID) {
			return errs.E(op, errs.Invalid, "skills[%d].group_id: must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'", i)
		}
		if seen[s.GroupID] {
			return errs.E(op, errs.Invalid, "skills[%d].group_id: group %q listed twice", i, s.GroupID)
		}
		seen[s.GroupID] = true
		if s.Proficiency < MinProficiency || s.Proficiency > MaxProficiency {
			return errs.E(op, errs.Invalid, "skills[%d].proficiency: must be between %d and %d", i, MinProficiency, MaxProficiency)
		}
	}
	return nil
}

// validateID checks an identifier of a tenant, agent or group.
func validateID(op, field, id string) error {
	if !idRE.MatchString(id) {
		return errs.E(op, errs.Invalid, "%s: must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'", field)
	}
	return nil
}

// validateName checks a human-readable name: non-empty, at most MaxNameLen
// characters.
func validateName(op, field, name string) error {
	if name == "" {
		return errs.E(op, errs.Invalid, "%s: must not be empty", field)
	}
	if utf8.RuneCountInString(name) > MaxNameLen {
		return errs.E(op, errs.Invalid, "%s: must be at most %d characters", field, MaxNameLen)
	}
	return nil
}

// Validate checks a tenant before it is stored.
func (t Tenant) Validate() error {
	const op = "agents.Tenant.Validate"
	if err := validateID(op, "id", t.ID); err != nil {
		return err
	}
	return validateName(op, "name", t.Name)
}

// ValidateProfile checks the fields of an agent an admin may change after
// creation (display name, role, capacity), so AgentUpdate and AgentCreate
// apply the same rules.
func (a Agent) ValidateProfile() error {
	const op = "agents.Agent.Validate"
	if err := validateName(op, "display_name", a.DisplayName); err != nil {
		return err
	}
	if !a.Role.Valid() {
		return errs.E(op, errs.Invalid, "role: must be one of admin, supervisor, agent")
	}
	return ValidateMaxSessions(a.MaxSessions)
}

// Validate checks a whole agent before it is created.
func (a Agent) Validate() error {
	const op = "agents.Agent.Validate"
	if err := validateID(op, "tenant_id", a.TenantID); err != nil {
		return err
	}
	if err := validateID(op, "id", a.ID); err != nil {
		return err
	}
	if err := ValidateUsername(a.Username); err != nil {
		return err
	}
	if err := a.ValidateProfile(); err != nil {
		return err
	}
	if !a.State.Valid() {
		return errs.E(op, errs.Invalid, "state: must be one of offline, ready, not_ready")
	}
	return ValidateSkills(a.Skills)
}

// Validate checks a skill group before it is created or updated.
func (g Group) Validate() error {
	const op = "agents.Group.Validate"
	if err := validateID(op, "tenant_id", g.TenantID); err != nil {
		return err
	}
	if err := validateID(op, "id", g.ID); err != nil {
		return err
	}
	if err := validateName(op, "name", g.Name); err != nil {
		return err
	}
	if !slices.Contains(strategies, g.Strategy) {
		return errs.E(op, errs.Invalid, "strategy: unknown strategy %q", g.Strategy)
	}
	if g.SLThresholdSec < 1 || g.SLThresholdSec > 86400 {
		return errs.E(op, errs.Invalid, "sl_threshold_sec: must be between 1 and 86400")
	}
	if g.MaxQueue < 0 {
		return errs.E(op, errs.Invalid, "max_queue: must be 0 (unlimited) or more")
	}
	return nil
}
