package agents

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/acd"
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
	MinSkillWeight   = 1
	MaxSkillWeight   = 100
	MaxNameLen       = 200 // display names, group and tenant names, labels (in characters)
	MaxIDLen         = 64  // tenant, agent and group ids

	// Group routing settings (see Group for what each means).
	MaxGroupWeight       = 100   // weight is in (0, MaxGroupWeight]
	MaxPriorityStepSec   = 86400 // priority_step_sec is in [0, MaxPriorityStepSec]
	MaxWaitLimitSec      = 86400 // max_wait_sec is in [0, MaxWaitLimitSec]
	MaxStickyWaitSec     = 3600
	MinRingStepSec       = 1
	MaxRingStepSec       = 3600
	MinOfferTimeoutSec   = 5 // offer_timeout_sec is 0 or in [MinOfferTimeoutSec, MaxOfferTimeoutSec]
	MaxOfferTimeoutSec   = 600
	MaxMissedOffersLimit = 100  // max_missed_offers is in [0, MaxMissedOffersLimit]
	MaxMessageLen        = 1000 // off_hours_message and busy_message (in characters)

	// DefaultMaxSessions is what a new agent gets when none is given; it
	// matches the schema default.
	DefaultMaxSessions = 3
	// DefaultStrategy is the strategy of a group created without one.
	DefaultStrategy = "longest_idle"
	// DefaultSLThresholdSec is the usual 20-second service-level target.
	DefaultSLThresholdSec = 20
	// DefaultSkillWeight gives every agent of a weighted group an equal
	// share unless configured otherwise.
	DefaultSkillWeight = 1

	// Defaults of a new group's routing settings; they match the schema
	// defaults (migrations 0002_routing.sql).
	DefaultFallbackStrategy = "longest_idle"
	DefaultGroupWeight      = 1
	DefaultPriorityStepSec  = 60
	DefaultStickyWaitSec    = 30
	DefaultRingStepSec      = 15
)

// strategies are the agent-selection strategy names a group may carry
// (DESIGN §5). The acd package routes by them; this list keeps typos out of
// the configuration.
var strategies = []string{"longest_idle", "round_robin", "least_busy", "weighted", "sticky", "skills"}

// strategyAliases are accepted on input and stored as their target: DESIGN
// §5 names fifo and longest_idle as one strategy.
var strategyAliases = map[string]string{"fifo": "longest_idle"}

// Strategies returns the strategy names a group may carry, for forms and
// API descriptions. Aliases accepted on input (fifo) are not among them.
func Strategies() []string { return append([]string(nil), strategies...) }

// FallbackStrategies returns the strategies a group may fall back to: all
// but sticky, which is the one that needs a fallback.
func FallbackStrategies() []string {
	return slices.DeleteFunc(Strategies(), func(s string) bool { return s == "sticky" })
}

// CanonicalStrategy returns the stored name of a strategy given on input:
// an alias becomes its target, any other name is returned as it is (and
// Group.Validate judges it).
func CanonicalStrategy(name string) string {
	if target, ok := strategyAliases[name]; ok {
		return target
	}
	return name
}

// CanonicalHours parses business hours given as JSON text ("" or "null"
// for always open) and returns them in the canonical text that is stored.
func CanonicalHours(text string) (HoursJSON, error) {
	if text == "" || text == "null" {
		return "", nil
	}
	h, err := acd.ParseHours(text)
	if err != nil {
		return "", hoursError("agents.CanonicalHours", err)
	}
	if h == nil {
		return "", nil
	}
	return HoursJSON(h.String()), nil
}

// hoursError reports a schedule acd.ParseHours refused with a message that
// names the field from the group down ("hours.weekly.mon[0].end: ...").
func hoursError(op string, err error) error {
	msg := err.Error()
	if e := (*errs.Error)(nil); errors.As(err, &e) && e.Msg != "" {
		msg = e.Msg
	}
	if !strings.HasPrefix(msg, "hours") {
		msg = "hours." + msg
	}
	return &errs.Error{Op: op, Code: errs.Invalid, Msg: msg, Err: err}
}

// NewGroup returns a group with every setting at its default, for callers
// that create groups field by field.
func NewGroup(tenantID, id, name string) Group {
	return Group{
		TenantID:         tenantID,
		ID:               id,
		Name:             name,
		Strategy:         DefaultStrategy,
		SLThresholdSec:   DefaultSLThresholdSec,
		FallbackStrategy: DefaultFallbackStrategy,
		Weight:           DefaultGroupWeight,
		PriorityStepSec:  DefaultPriorityStepSec,
		StickyWaitSec:    DefaultStickyWaitSec,
		RingStepSec:      DefaultRingStepSec,
	}
}

// Normalize returns g in the form it is stored in: strategy aliases
// resolved, hours in canonical text, and the routing settings whose zero
// value is not a valid setting (fallback_strategy, weight, ring_step_sec)
// at their defaults, as the schema defaults fill them for rows written
// before those columns existed. Zero values that are valid settings (no
// aging, no sticky wait) stay; NewGroup gives every default. Invalid hours
// are left as they are for Validate to report.
func (g Group) Normalize() Group {
	g.Strategy = CanonicalStrategy(g.Strategy)
	g.FallbackStrategy = CanonicalStrategy(g.FallbackStrategy)
	if g.FallbackStrategy == "" {
		g.FallbackStrategy = DefaultFallbackStrategy
	}
	if g.Weight == 0 {
		g.Weight = DefaultGroupWeight
	}
	if g.RingStepSec == 0 {
		g.RingStepSec = DefaultRingStepSec
	}
	if h, err := CanonicalHours(string(g.Hours)); err == nil {
		g.Hours = h
	}
	return g
}

// Normalize returns s with a zero weight at DefaultSkillWeight.
func (s Skill) Normalize() Skill {
	if s.Weight == 0 {
		s.Weight = DefaultSkillWeight
	}
	return s
}

// NormalizeSkills returns a copy of skills with each skill normalized; nil
// stays nil.
func NormalizeSkills(skills []Skill) []Skill {
	if skills == nil {
		return nil
	}
	out := make([]Skill, len(skills))
	for i, s := range skills {
		out[i] = s.Normalize()
	}
	return out
}

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
// proficiency of 1..5 and a weight of 1..100 (see NormalizeSkills for the
// default weight).
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
		if s.Weight < MinSkillWeight || s.Weight > MaxSkillWeight {
			return errs.E(op, errs.Invalid, "skills[%d].weight: must be between %d and %d", i, MinSkillWeight, MaxSkillWeight)
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

// Validate checks a skill group before it is created or updated. It
// judges the stored form: strategy aliases and missing defaults are
// Normalize's business, so a zero weight or "fifo" is refused here.
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
	if !slices.Contains(FallbackStrategies(), g.FallbackStrategy) {
		return errs.E(op, errs.Invalid, "fallback_strategy: must be a strategy other than sticky, not %q", g.FallbackStrategy)
	}
	// Written so that NaN fails too.
	if !(g.Weight > 0 && g.Weight <= MaxGroupWeight) {
		return errs.E(op, errs.Invalid, "weight: must be more than 0 and at most %d", MaxGroupWeight)
	}
	if err := validateRange(op, "priority_step_sec", g.PriorityStepSec, 0, MaxPriorityStepSec, " (0 turns aging off)"); err != nil {
		return err
	}
	if err := validateRange(op, "max_wait_sec", g.MaxWaitSec, 0, MaxWaitLimitSec, " (0 means no limit)"); err != nil {
		return err
	}
	switch g.OverflowAction {
	case "", OverflowWithMessage:
		if g.OverflowGroupID != "" {
			return errs.E(op, errs.Invalid, "overflow_group_id: must be empty unless overflow_action is %q", OverflowToGroup)
		}
	case OverflowToGroup:
		if g.OverflowGroupID == "" {
			return errs.E(op, errs.Invalid, "overflow_group_id: required when overflow_action is %q", OverflowToGroup)
		}
		if err := validateID(op, "overflow_group_id", g.OverflowGroupID); err != nil {
			return err
		}
		if g.OverflowGroupID == g.ID {
			return errs.E(op, errs.Invalid, "overflow_group_id: must not be the group itself")
		}
	default:
		return errs.E(op, errs.Invalid, "overflow_action: must be %q, %q or empty, not %q", OverflowToGroup, OverflowWithMessage, g.OverflowAction)
	}
	if err := validateRange(op, "sticky_wait_sec", g.StickyWaitSec, 0, MaxStickyWaitSec, ""); err != nil {
		return err
	}
	if err := validateRange(op, "ring_step_sec", g.RingStepSec, MinRingStepSec, MaxRingStepSec, ""); err != nil {
		return err
	}
	if g.OfferTimeoutSec != 0 {
		if err := validateRange(op, "offer_timeout_sec", g.OfferTimeoutSec, MinOfferTimeoutSec, MaxOfferTimeoutSec, " or 0 (assign without an offer)"); err != nil {
			return err
		}
	}
	if err := validateRange(op, "max_missed_offers", g.MaxMissedOffers, 0, MaxMissedOffersLimit, " (0 means never)"); err != nil {
		return err
	}
	if _, err := acd.ParseHours(string(g.Hours)); err != nil {
		return hoursError(op, err)
	}
	if utf8.RuneCountInString(g.OffHoursMessage) > MaxMessageLen {
		return errs.E(op, errs.Invalid, "off_hours_message: must be at most %d characters", MaxMessageLen)
	}
	if utf8.RuneCountInString(g.BusyMessage) > MaxMessageLen {
		return errs.E(op, errs.Invalid, "busy_message: must be at most %d characters", MaxMessageLen)
	}
	return nil
}

// validateRange checks that an integer setting lies in [lo, hi]; note is
// appended to the message to say what a special value means.
func validateRange(op, field string, v, lo, hi int, note string) error {
	if v < lo || v > hi {
		return errs.E(op, errs.Invalid, "%s: must be between %d and %d%s", field, lo, hi, note)
	}
	return nil
}
