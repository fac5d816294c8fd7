// Package kb owns the knowledge base and the bot that answers customers
// before a person does: FAQ entries with their question variants, keyword
// rules, the per-tenant bot settings, the unmatched-question bin editors sort
// misses from, and the bot policy that decides between answering, offering
// "did you mean" choices and handing off.
//
// The package holds the domain types, their rules and the services built on
// them. It holds no SQL (kbsql implements Store, checked by the kbtest
// conformance suite) and no retrieval maths (kb/match builds a matcher from
// entries and rules; the bleve index it uses is derived data, DESIGN D9).
package kb

import (
	"context"
	"time"
)

// Limits on what an entry or a rule may hold. They bound the index and the
// matcher's work per message, and turn an absurd import into a clear error.
const (
	MaxQuestionLen = 500   // bytes of a standard question or a variant
	MaxAnswerLen   = 4000  // bytes of an answer text
	MaxVariants    = 200   // variants per entry
	MaxKeywords    = 50    // keywords per entry or rule
	MaxKeywordLen  = 100   // bytes of one keyword
	MaxChoices     = 10    // choices (menu items, buttons) per answer
	MaxRegexLen    = 300   // bytes of a regex rule pattern
	MaxMessageLen  = 2000  // bytes of a customer message the bot reads; the rest is ignored
	MaxCategoryLen = 100   // bytes of a category name
	MaxImportRows  = 20000 // entries in one import
)

// Language of an entry or a message. The matcher analyses Chinese and
// English differently (bigrams and single characters; stemmed words).
type Language string

// The languages the matcher knows. LangAuto lets the matcher tell from the
// text (any Han character makes it Chinese).
const (
	LangAuto    Language = ""
	LangEnglish Language = "en"
	LangChinese Language = "zh"
)

// Valid reports whether l is a known language or auto.
func (l Language) Valid() bool { return l == LangAuto || l == LangEnglish || l == LangChinese }

// Entry is one FAQ: the standard question editors write, the other ways
// customers ask it, and the answer the bot gives.
type Entry struct {
	TenantID string   `json:"-" db:"tenant_id"`
	ID       string   `json:"id" db:"id"`
	Question string   `json:"question" db:"question"`
	Variants []string `json:"variants"`
	Answer   Answer   `json:"answer"`
	Keywords []string `json:"keywords"`
	Category string   `json:"category" db:"category"`
	Language Language `json:"language" db:"language"`
	Enabled  bool     `json:"enabled" db:"enabled"`
	// Version counts the entry's changes; an update names the version it
	// read and fails with errs.Conflict when another write came first.
	Version   int       `json:"version" db:"version"`
	CreatedAt time.Time `json:"created_at" db:"created_at"`
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
	UpdatedBy string    `json:"updated_by" db:"updated_by"`
}

// Answer is what the bot sends: a text and, optionally, choices the
// customer picks by button or by typing the choice's number.
type Answer struct {
	Text    string   `json:"text"`
	Choices []Choice `json:"choices,omitempty"`
}

// Choice is one menu item or button of an answer. Picking it answers with
// another entry, answers with its own text, or hands off to a person.
type Choice struct {
	Label string `json:"label"`
	// EntryID answers with that entry's answer.
	EntryID string `json:"entry_id,omitempty"`
	// Text answers with this text (when EntryID is empty).
	Text string `json:"text,omitempty"`
	// Handoff hands the session to a person, in GroupID when set (else the
	// channel account's default group).
	Handoff bool   `json:"handoff,omitempty"`
	GroupID string `json:"group_id,omitempty"`
}

// RuleKind says how a rule's keywords are compared with a message.
type RuleKind string

// The rule kinds. Every keyword of every exact, contains and menu rule of a
// tenant goes into one automaton: the longest matching keyword wins, then
// the higher priority. Regex rules are tried after the automaton found
// nothing.
const (
	// RuleExact matches a message equal to a keyword (after normalisation).
	RuleExact RuleKind = "exact"
	// RuleContains matches a message containing a keyword; ASCII keywords
	// match whole words only.
	RuleContains RuleKind = "contains"
	// RuleRegex matches a message against one RE2 pattern (linear time, so
	// no pattern is catastrophic; length and complexity are capped).
	RuleRegex RuleKind = "regex"
	// RuleMenu matches a message that is just a menu number ("1", "２",
	// "1.") equal to a keyword, for top-level menus a greeting announces.
	RuleMenu RuleKind = "menu"
)

// Valid reports whether k is a known rule kind.
func (k RuleKind) Valid() bool {
	return k == RuleExact || k == RuleContains || k == RuleRegex || k == RuleMenu
}

// Rule is a keyword rule: when its keywords match, the bot acts without
// asking the FAQ matcher. A rule answers with its own answer, with an
// entry's answer, or hands off.
type Rule struct {
	TenantID string   `json:"-" db:"tenant_id"`
	ID       string   `json:"id" db:"id"`
	Name     string   `json:"name" db:"name"`
	Kind     RuleKind `json:"kind" db:"kind"`
	// Keywords are the phrases (exact, contains, menu) or the single
	// pattern (regex) the rule matches.
	Keywords []string `json:"keywords"`
	// Priority breaks ties between matches of equal length; higher wins.
	Priority int    `json:"priority" db:"priority"`
	Answer   Answer `json:"answer"`
	EntryID  string `json:"entry_id,omitempty" db:"entry_id"`
	Handoff  bool   `json:"handoff" db:"handoff"`
	GroupID  string `json:"group_id,omitempty" db:"group_id"`
	Enabled  bool   `json:"enabled" db:"enabled"`

	Version   int       `json:"version" db:"version"`
	CreatedAt time.Time `json:"created_at" db:"created_at"`
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
}

// Settings are a tenant's bot policy. Thresholds apply to the matcher's
// calibrated confidence (0..1): at or above AnswerThreshold the bot answers;
// at or above SuggestThreshold it offers up to three "did you mean" choices;
// below, the message is a miss.
type Settings struct {
	TenantID         string   `json:"-" db:"tenant_id"`
	AnswerThreshold  float64  `json:"answer_threshold" db:"answer_threshold"`
	SuggestThreshold float64  `json:"suggest_threshold" db:"suggest_threshold"`
	HandoffWords     []string `json:"handoff_words"`
	// MaxMisses in a row hand off (0 never does).
	MaxMisses int `json:"max_misses" db:"max_misses"`
	// Greeting opens every session; FallbackText answers a miss.
	Greeting     string    `json:"greeting" db:"greeting"`
	FallbackText string    `json:"fallback_text" db:"fallback_text"`
	UpdatedAt    time.Time `json:"updated_at" db:"updated_at"`
}

// Action is what happened to a KB object, in its change history.
type Action string

// The history actions.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Change is one entry of an entry's history: who did what, when, and the
// entry as it was after the change (as it was before, for a delete).
type Change struct {
	EntryID string    `json:"entry_id" db:"entry_id"`
	Version int       `json:"version" db:"version"`
	Action  Action    `json:"action" db:"action"`
	Actor   string    `json:"actor" db:"actor"`
	At      time.Time `json:"at" db:"at"`
	Entry   Entry     `json:"entry"`
}

// EntryFilter narrows EntryList. Zero fields do not filter.
type EntryFilter struct {
	Category string
	Language Language
	Enabled  *bool
	// Text matches entries whose question contains it (case-insensitive).
	Text   string
	Limit  int // 0 means every entry
	Offset int
}

// Miss is one message the bot did not understand, as recorded.
type Miss struct {
	TenantID  string
	SessionID string
	// Text is what the customer wrote (capped at MaxMessageLen).
	Text string
	// Key is the normalised form that groups misses: messages that
	// normalise to the same key are one group.
	Key string
	At  time.Time
}

// MissGroup is a group of misses with the same normalised key: how often and
// when it was seen, and a few recent samples with their sessions.
type MissGroup struct {
	TenantID  string       `json:"-" db:"tenant_id"`
	ID        string       `json:"id" db:"id"`
	Key       string       `json:"key" db:"key"`
	Text      string       `json:"text" db:"text"` // the first text seen
	Count     int          `json:"count" db:"count"`
	FirstSeen time.Time    `json:"first_seen" db:"first_seen"`
	LastSeen  time.Time    `json:"last_seen" db:"last_seen"`
	Samples   []MissSample `json:"samples"`
}

// MissSample is one recorded miss of a group.
type MissSample struct {
	SessionID string    `json:"session_id"`
	Text      string    `json:"text"`
	At        time.Time `json:"at"`
}

// MaxMissSamples is how many recent samples a miss group keeps.
const MaxMissSamples = 5

// Store persists the knowledge base. It is declared here, by its consumer,
// and implemented by adapters (kbsql); kbtest.Run checks an implementation
// against the contract written on each method.
//
// Common contract: every method filters on the tenant, so an id of another
// tenant is NotFound, never visible. Missing objects are errs.NotFound,
// stale versions errs.Conflict. Times come back in UTC truncated to
// microseconds. Methods that write return the object as stored. Every write
// to entries, rules or settings bumps the tenant's revision, which nodes
// compare to know whether their index is current.
type Store interface {
	// InTx runs fn with a Store bound to one transaction: every write in fn
	// lands, or none does.
	InTx(ctx context.Context, fn func(tx Store) error) error

	// Revision returns the tenant's KB revision (0 before any write).
	Revision(ctx context.Context, tenantID string) (int64, error)

	// EntryCreate stores a new entry with version 1 and records a create
	// change by actor. An empty ID is an error (the service assigns ids).
	EntryCreate(ctx context.Context, e Entry, actor string) (Entry, error)
	// EntryGet returns one entry.
	EntryGet(ctx context.Context, tenantID, id string) (Entry, error)
	// EntryList returns entries matching f ordered by question, then id.
	EntryList(ctx context.Context, tenantID string, f EntryFilter) ([]Entry, error)
	// EntryUpdate replaces every field of e (but CreatedAt) when e.Version
	// is the stored version, stores it as version+1 and records an update.
	EntryUpdate(ctx context.Context, e Entry, actor string) (Entry, error)
	// EntryDelete removes an entry and records a delete change carrying the
	// entry as it was. Rules pointing at it keep their EntryID (the bot
	// treats a dangling reference as a miss).
	EntryDelete(ctx context.Context, tenantID, id, actor string) error
	// EntryHistory returns an entry's changes, newest first; it works for
	// deleted entries too (NotFound only when there never was one).
	EntryHistory(ctx context.Context, tenantID, id string) ([]Change, error)

	// RuleCreate stores a new rule with version 1.
	RuleCreate(ctx context.Context, r Rule) (Rule, error)
	// RuleGet returns one rule.
	RuleGet(ctx context.Context, tenantID, id string) (Rule, error)
	// RuleList returns a tenant's rules ordered by priority descending,
	// then name, then id.
	RuleList(ctx context.Context, tenantID string) ([]Rule, error)
	// RuleUpdate replaces a rule when r.Version is the stored version.
	RuleUpdate(ctx context.Context, r Rule) (Rule, error)
	// RuleDelete removes a rule.
	RuleDelete(ctx context.Context, tenantID, id string) error

	// SettingsGet returns a tenant's bot settings; a tenant that never saved
	// any gets DefaultSettings.
	SettingsGet(ctx context.Context, tenantID string) (Settings, error)
	// SettingsPut saves a tenant's bot settings.
	SettingsPut(ctx context.Context, s Settings) (Settings, error)

	// MissRecord adds a miss to the group of its key (creating the group),
	// counting it and keeping the MaxMissSamples most recent samples.
	MissRecord(ctx context.Context, m Miss) (MissGroup, error)
	// MissList returns a tenant's miss groups, most counted first, then
	// most recently seen.
	MissList(ctx context.Context, tenantID string, limit int) ([]MissGroup, error)
	// MissGet returns one miss group.
	MissGet(ctx context.Context, tenantID, id string) (MissGroup, error)
	// MissDelete removes miss groups (resolved by an editor); unknown ids
	// are NotFound and nothing is removed.
	MissDelete(ctx context.Context, tenantID string, ids []string) error
}

// DefaultSettings are the bot settings of a tenant that saved none. The
// thresholds are the matcher's calibrated defaults; see docs/kb.md.
func DefaultSettings(tenantID string) Settings {
	return Settings{
		TenantID:         tenantID,
		AnswerThreshold:  0.6,
		SuggestThreshold: 0.3,
		HandoffWords:     []string{"人工", "转人工", "人工客服", "客服", "agent", "human", "person", "operator", "representative"},
		MaxMisses:        2,
		Greeting:         "Hi! I'm the virtual assistant. Ask me anything, or type \"agent\" (人工) to talk to a person.",
		FallbackText:     "Sorry, I didn't catch that. Could you say it another way? Type \"agent\" (人工) to talk to a person.",
	}
}
