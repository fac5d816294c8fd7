// This file holds contacts across channels (docs/contacts.md): the
// identities a person writes from, the facts that tie identities of one
// person together (WeChat UnionID, verified phone numbers), explicit and
// audited merges that can be undone, the history and export of everything
// held about a contact, and erasure. ContactStore is the persistence it
// needs; Contacts applies the rules on top of it.

package session

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// ContactStore keeps contacts with their identities, the merge audit and
// the per-tenant contact settings. Store embeds it; the SQL adapter
// (sessionsql) implements it for PostgreSQL and SQLite. Every method is
// scoped to one tenant: another tenant's ids are NotFound, its lists empty.
// Erased contacts (ContactDelete) are NotFound everywhere.
type ContactStore interface {
	// ContactGet returns one contact; a merged contact is returned with
	// MergedInto set.
	ContactGet(ctx context.Context, tenantID, id string) (Contact, error)
	// ContactList lists a tenant's contacts, newest first, narrowed by f.
	ContactList(ctx context.Context, tenantID string, f ContactFilter) ([]Contact, error)
	// ContactUpdate changes the given fields of a contact's profile (the
	// patch must be valid, see ContactPatch.Normalize) and returns the
	// contact. A merged contact is Conflict: its survivor holds the profile.
	ContactUpdate(ctx context.Context, tenantID, id string, p ContactPatch, now time.Time) (Contact, error)
	// ContactIdentities lists the identities of a contact, oldest first.
	ContactIdentities(ctx context.Context, tenantID, contactID string) ([]Identity, error)

	// IdentityGet returns one identity.
	IdentityGet(ctx context.Context, tenantID, accountID, externalID string) (Identity, error)
	// IdentityUpdateFacts records what a channel told about an identity
	// (f must be normalised, see IdentityFacts.Normalize): empty fields keep
	// the stored value, a non-zero InboundAt raises last_inbound_at when it
	// is at least LastInboundStep later. It is called on every inbound
	// message: a message that brings nothing new costs one read, others one
	// statement where the database allows. changed reports that the
	// identity's union id or its verified phone is new, i.e. that merge
	// candidates may have appeared. An unknown identity is NotFound.
	IdentityUpdateFacts(ctx context.Context, tenantID, accountID, externalID string, f IdentityFacts) (id Identity, changed bool, err error)

	// ContactMergeCandidates lists the other contacts that share a union id
	// with one of the contact's identities, or a verified phone with one of
	// its verified phones, oldest first.
	ContactMergeCandidates(ctx context.Context, tenantID, contactID string) ([]MergeCandidate, error)
	// ContactMerge merges mergedID into survivorID in one transaction (see
	// docs/contacts.md): identities and conversations move to the survivor
	// (a conversation on an account where the survivor has one stays with
	// the merged contact, which is Conflict while it has an open session),
	// the survivor keeps the higher VIP level and gains the merged
	// contact's tags and missing attributes, the merged contact points to
	// the survivor (MergedInto), and a Merge records all of it for undo.
	// reason union_id or phone requires the two contacts to share that
	// fact (else Invalid). Unknown contacts are NotFound; a contact already
	// merged is Conflict.
	ContactMerge(ctx context.Context, tenantID, survivorID, mergedID string, reason MergeReason, actor string, now time.Time) (Merge, error)
	// ContactMergeUndo reverses a merge exactly: the recorded identities
	// and conversations (with their sessions) go back, the survivor's
	// profile fields return to their pre-merge values unless edited since.
	// It is Conflict, saying why, when that is no longer possible: the
	// merge was undone already, a contact was erased, the survivor was
	// merged on into another contact, a recorded identity or conversation
	// belongs elsewhere now, or the survivor's conversation on an account
	// where the merged contact's conversation was kept received customer
	// messages since (they cannot be told apart).
	ContactMergeUndo(ctx context.Context, tenantID, mergeID, actor string, now time.Time) (Merge, error)
	// ContactMerges lists merges, newest first, narrowed by f.
	ContactMerges(ctx context.Context, tenantID string, f MergeFilter) ([]Merge, error)

	// ContactHistory lists the sessions of a contact and of the contacts
	// merged into it, on every channel, newest first, each with its
	// messages.
	ContactHistory(ctx context.Context, tenantID, contactID string, q HistoryQuery) (History, error)
	// ContactExport returns everything held about a contact and the
	// contacts merged into it. ExportedAt is left for the caller.
	ContactExport(ctx context.Context, tenantID, contactID string) (Export, error)
	// ContactDelete erases a contact and the contacts merged into it
	// (docs/contacts.md, erasure): messages, their outbox rows, notes and
	// identities are deleted, the contact rows, session events and merge records are
	// anonymised, sessions and conversations stay for KPIs. It is Conflict
	// while one of their sessions is not closed, and for a contact merged
	// into another (erase the survivor).
	ContactDelete(ctx context.Context, tenantID, contactID, actor string, now time.Time) (Erasure, error)

	// ContactSettingsGet returns the tenant's contact settings (the
	// defaults when never saved).
	ContactSettingsGet(ctx context.Context, tenantID string) (ContactSettings, error)
	// ContactSettingsPut saves the tenant's contact settings.
	ContactSettingsPut(ctx context.Context, cs ContactSettings) error
}

// Contact is an end user. Tags and Attributes are empty (nil) until set;
// MergedInto is the survivor this contact was merged into ("" when not
// merged); UpdatedAt is nil until the profile first changes after creation.
type Contact struct {
	TenantID    string            `json:"tenant_id"`
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	VIPLevel    int               `json:"vip_level"`
	Tags        []string          `json:"tags,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	MergedInto  string            `json:"merged_into,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   *time.Time        `json:"updated_at,omitempty"`
}

// Identity is one way a contact reaches us: an external id (wa_id, openid,
// visitor id...) on one channel account, with what the channel told about
// it. LastInboundAt is the identity's latest inbound message: the
// customer-service window of its channel runs from it (WindowEnd).
type Identity struct {
	TenantID   string `json:"tenant_id"`
	AccountID  string `json:"account_id"`
	ExternalID string `json:"external_id"`
	ContactID  string `json:"contact_id"`
	// Channel is the type of the account (channels.Type); "" for
	// identities seen before facts were recorded.
	Channel       string     `json:"channel"`
	UnionID       string     `json:"union_id,omitempty"`
	Phone         string     `json:"phone,omitempty"`
	PhoneVerified bool       `json:"phone_verified"`
	DisplayName   string     `json:"display_name"`
	LastInboundAt *time.Time `json:"last_inbound_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// LastInboundStep is how far a message must be past an identity's
// recorded last inbound time to be recorded: most messages then change
// nothing and write nothing. The window computed from it closes at most
// this much earlier than the provider's, never later.
const LastInboundStep = time.Minute

// WindowEnd is when the customer-service window of a channel whose window
// is window (channels.Type.Window) closes for this identity; ok is false
// when the channel has no window or the identity never wrote.
func (i Identity) WindowEnd(window time.Duration) (end time.Time, ok bool) {
	if window <= 0 || i.LastInboundAt == nil {
		return time.Time{}, false
	}
	return i.LastInboundAt.Add(window), true
}

// IdentityKey names an identity.
type IdentityKey struct {
	AccountID  string `json:"account_id"`
	ExternalID string `json:"external_id"`
}

// IdentityFacts is what an inbound message tells about its sender. Empty
// fields are unknown and keep what is stored.
type IdentityFacts struct {
	// Channel is the type of the account the message came through.
	Channel string
	// UnionID is WeChat's id of the person across the Official Accounts,
	// mini programs and apps of one open-platform account.
	UnionID string
	// Phone is an E.164 number ("+8613800138000"); PhoneVerified says the
	// channel vouches for it (WhatsApp's wa_id, an SMS sender), as opposed
	// to a number the customer typed.
	Phone         string
	PhoneVerified bool
	DisplayName   string
	// InboundAt is the time of the message; zero records facts only.
	InboundAt time.Time
}

// Limits of contact and identity fields.
const (
	MaxDisplayNameLen = 200  // characters
	MaxUnionIDLen     = 128  // bytes
	MaxTags           = 50   // tags per contact
	MaxTagLen         = 50   // characters per tag
	MaxAttributes     = 50   // attributes per contact
	MaxAttributeKey   = 64   // bytes per key
	MaxAttributeValue = 1000 // characters per value
	MaxVIPLevel       = 10
)

// Normalize checks facts from a channel and returns them cleaned: the phone
// in E.164 (see NormalizePhone), names trimmed and cut to
// MaxDisplayNameLen. A phone that cannot be read is Invalid; callers on the
// inbound path may drop it and keep the rest.
func (f IdentityFacts) Normalize() (IdentityFacts, error) {
	const op = "session.IdentityFacts"
	f.Channel = strings.TrimSpace(f.Channel)
	if len(f.Channel) > 32 {
		return f, errs.E(op, errs.Invalid, "channel: longer than 32 bytes")
	}
	f.UnionID = strings.TrimSpace(f.UnionID)
	if len(f.UnionID) > MaxUnionIDLen || !utf8.ValidString(f.UnionID) {
		return f, errs.E(op, errs.Invalid, "union_id: must be valid UTF-8 of at most %d bytes", MaxUnionIDLen)
	}
	if f.Phone != "" {
		p, err := NormalizePhone(f.Phone)
		if err != nil {
			return f, err
		}
		f.Phone = p
	} else {
		f.PhoneVerified = false
	}
	f.DisplayName = cutRunes(strings.TrimSpace(strings.ToValidUTF8(f.DisplayName, "")), MaxDisplayNameLen)
	if !f.InboundAt.IsZero() {
		f.InboundAt = f.InboundAt.UTC()
	}
	return f, nil
}

func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// ValidE164 reports whether p is a phone number in E.164 form.
func ValidE164(p string) bool { return e164.MatchString(p) }

// NormalizePhone reads a phone number as channels and people write it and
// returns it in E.164 ("+" and 7 to 15 digits, no leading zero). Spaces,
// dashes, dots and parentheses are ignored; "00" is read as "+". A number
// without "+" or "00" is taken as international digits, which is how
// WhatsApp (wa_id) and SMS gateways deliver it; a national number with a
// trunk zero ("0151...") cannot be placed in a country and is Invalid.
func NormalizePhone(raw string) (string, error) {
	const op = "session.NormalizePhone"
	if len(raw) > 64 {
		return "", errs.E(op, errs.Invalid, "phone: longer than 64 bytes")
	}
	var b strings.Builder
	b.Grow(16)
	s := strings.TrimSpace(raw)
	switch {
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case strings.HasPrefix(s, "00"):
		s = s[2:]
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", errs.E(op, errs.Invalid, "phone: %q is not a phone number", raw)
		}
	}
	p := "+" + b.String()
	if !ValidE164(p) {
		return "", errs.E(op, errs.Invalid, "phone: %q is not an international number (E.164: + and 7 to 15 digits, no leading 0)", raw)
	}
	return p, nil
}

// ContactFilter narrows ContactList; zero fields match everything.
type ContactFilter struct {
	// Query finds contacts by a part of their name or an identity's name
	// (case-insensitive), or exactly by contact id, external id, union id
	// or phone (any form NormalizePhone reads).
	Query string
	// IncludeMerged also lists contacts merged into others.
	IncludeMerged bool
	// After continues a listing after this contact (results are ordered
	// newest first); "" starts at the newest.
	After string
	// Limit caps the result (default 100, max 1000).
	Limit int
}

// MaxQueryLen caps ContactFilter.Query.
const MaxQueryLen = 200

// ContactPatch changes a contact's profile: nil fields stay as they are.
type ContactPatch struct {
	DisplayName *string            `json:"display_name"`
	VIPLevel    *int               `json:"vip_level"`
	Tags        *[]string          `json:"tags"`
	Attributes  *map[string]string `json:"attributes"`
}

// Normalize checks a patch and returns it cleaned: the name trimmed, tags
// trimmed and without repeats (in their first order), an empty tag list
// or attribute map as empty (not nil).
func (p ContactPatch) Normalize() (ContactPatch, error) {
	const op = "session.ContactPatch"
	if p.DisplayName != nil {
		n := strings.TrimSpace(*p.DisplayName)
		if !utf8.ValidString(n) || utf8.RuneCountInString(n) > MaxDisplayNameLen {
			return p, errs.E(op, errs.Invalid, "display_name: must be valid UTF-8 of at most %d characters", MaxDisplayNameLen)
		}
		p.DisplayName = &n
	}
	if p.VIPLevel != nil && (*p.VIPLevel < 0 || *p.VIPLevel > MaxVIPLevel) {
		return p, errs.E(op, errs.Invalid, "vip_level: must be between 0 and %d", MaxVIPLevel)
	}
	if p.Tags != nil {
		tags, err := NormalizeTags(*p.Tags)
		if err != nil {
			return p, err
		}
		p.Tags = &tags
	}
	if p.Attributes != nil {
		if err := ValidateAttributes(*p.Attributes); err != nil {
			return p, err
		}
		a := *p.Attributes
		if a == nil {
			a = map[string]string{}
		}
		p.Attributes = &a
	}
	if p.DisplayName == nil && p.VIPLevel == nil && p.Tags == nil && p.Attributes == nil {
		return p, errs.E(op, errs.Invalid, "nothing to change: give display_name, vip_level, tags or attributes")
	}
	return p, nil
}

// NormalizeTags trims tags and drops repeats, keeping the first order.
func NormalizeTags(tags []string) ([]string, error) {
	const op = "session.NormalizeTags"
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxTagLen {
			return nil, errs.E(op, errs.Invalid, "tags: each tag must be 1 to %d characters of valid UTF-8", MaxTagLen)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, errs.E(op, errs.Invalid, "tags: at most %d", MaxTags)
	}
	return out, nil
}

var attributeKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ValidateAttributes checks a contact's attributes: at most MaxAttributes
// keys of letters, digits, "_", "." and "-", values of valid UTF-8 up to
// MaxAttributeValue characters.
func ValidateAttributes(a map[string]string) error {
	const op = "session.ValidateAttributes"
	if len(a) > MaxAttributes {
		return errs.E(op, errs.Invalid, "attributes: at most %d", MaxAttributes)
	}
	for k, v := range a {
		if !attributeKey.MatchString(k) {
			return errs.E(op, errs.Invalid, "attributes: key %q must be 1 to %d letters, digits, '_', '.' or '-'", k, MaxAttributeKey)
		}
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxAttributeValue {
			return errs.E(op, errs.Invalid, "attributes: value of %q must be valid UTF-8 of at most %d characters", k, MaxAttributeValue)
		}
	}
	return nil
}

// MergeReason says why two contacts were merged.
type MergeReason string

// The reasons.
const (
	MergeUnionID MergeReason = "union_id" // their identities share a WeChat UnionID
	MergePhone   MergeReason = "phone"    // their identities share a verified phone
	MergeManual  MergeReason = "manual"   // a person decided
)

// Valid reports whether r is a known reason.
func (r MergeReason) Valid() bool {
	return r == MergeUnionID || r == MergePhone || r == MergeManual
}

// SystemActor is the actor of merges the server makes by itself (the
// tenant's auto-merge by union id).
const SystemActor = "system"

// MergeCandidate is a contact that may be the same person as another: what
// they share.
type MergeCandidate struct {
	Contact Contact      `json:"contact"`
	Matches []MergeMatch `json:"matches"`
}

// MergeMatch is one shared fact: a union id or a verified phone.
type MergeMatch struct {
	Reason MergeReason `json:"reason"`
	Value  string      `json:"value"`
}

// Merge is one merge in the audit: who merged which contact into which,
// why, what moved (for undo) and whether it was undone.
type Merge struct {
	TenantID   string       `json:"tenant_id"`
	ID         string       `json:"id"`
	SurvivorID string       `json:"survivor_id"`
	MergedID   string       `json:"merged_id"`
	Reason     MergeReason  `json:"reason"`
	Actor      string       `json:"actor"`
	Changes    MergeChanges `json:"changes"`
	CreatedAt  time.Time    `json:"created_at"`
	UndoneAt   *time.Time   `json:"undone_at,omitempty"`
	UndoneBy   string       `json:"undone_by,omitempty"`
}

// MergeChanges is what a merge changed. Erased says the contacts were
// erased since: the rest is cleared with them.
type MergeChanges struct {
	// Identities moved from the merged contact to the survivor.
	Identities []IdentityKey `json:"identities"`
	// Conversations moved to the survivor, with their sessions.
	Conversations []string `json:"conversations"`
	// KeptConversations stayed with the merged contact because the
	// survivor had a conversation on the same account; they show in the
	// survivor's history.
	KeptConversations []string `json:"kept_conversations"`
	// SurvivorBefore and SurvivorAfter are the survivor's profile before
	// and after the merge.
	SurvivorBefore Profile `json:"survivor_before"`
	SurvivorAfter  Profile `json:"survivor_after"`
	Erased         bool    `json:"erased,omitempty"`
}

// Profile is the part of a contact a merge combines.
type Profile struct {
	DisplayName string            `json:"display_name"`
	VIPLevel    int               `json:"vip_level"`
	Tags        []string          `json:"tags"`
	Attributes  map[string]string `json:"attributes"`
}

// ProfileOf returns c's profile with empty (not nil) tags and attributes.
func ProfileOf(c Contact) Profile {
	p := Profile{DisplayName: c.DisplayName, VIPLevel: c.VIPLevel, Tags: c.Tags, Attributes: c.Attributes}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if p.Attributes == nil {
		p.Attributes = map[string]string{}
	}
	return p
}

// Combine is the survivor's profile after merging m into s: the higher VIP
// level, s's name unless empty, s's tags followed by m's new ones (capped
// at MaxTags), s's attributes plus those of m's keys s lacks (capped at
// MaxAttributes, m's keys taken in sorted order).
func Combine(s, m Profile) Profile {
	out := Profile{DisplayName: s.DisplayName, VIPLevel: max(s.VIPLevel, m.VIPLevel)}
	if out.DisplayName == "" {
		out.DisplayName = m.DisplayName
	}
	out.Tags = append([]string{}, s.Tags...)
	for _, t := range m.Tags {
		if len(out.Tags) < MaxTags && !slices.Contains(out.Tags, t) {
			out.Tags = append(out.Tags, t)
		}
	}
	out.Attributes = make(map[string]string, len(s.Attributes)+len(m.Attributes))
	for k, v := range s.Attributes {
		out.Attributes[k] = v
	}
	keys := make([]string, 0, len(m.Attributes))
	for k := range m.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := out.Attributes[k]; !ok && len(out.Attributes) < MaxAttributes {
			out.Attributes[k] = m.Attributes[k]
		}
	}
	return out
}

// Equal reports whether two profiles hold the same values (nil and empty
// tags or attributes are equal).
func (p Profile) Equal(q Profile) bool {
	if p.DisplayName != q.DisplayName || p.VIPLevel != q.VIPLevel || len(p.Tags) != len(q.Tags) || len(p.Attributes) != len(q.Attributes) {
		return false
	}
	if !slices.Equal(p.Tags, q.Tags) {
		return false
	}
	for k, v := range p.Attributes {
		if w, ok := q.Attributes[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// MergeFilter narrows ContactMerges; zero fields match everything.
type MergeFilter struct {
	// ContactID lists the merges this contact took part in (as survivor or
	// merged contact).
	ContactID string
	// Before continues a listing after this merge (results are ordered
	// newest first); "" starts at the newest.
	Before string
	// Limit caps the result (default 100, max 1000).
	Limit int
}

// HistoryQuery pages ContactHistory.
type HistoryQuery struct {
	// Before continues after this session (sessions are ordered newest
	// first); "" starts at the newest.
	Before string
	// Limit is the number of sessions (default 20, max 100).
	Limit int
	// Messages is the number of newest messages given per session
	// (default 50, max 200); the full transcript is the session's.
	Messages int
}

// Limits of HistoryQuery.
const (
	DefaultHistorySessions = 20
	MaxHistorySessions     = 100
	DefaultHistoryMessages = 50
	MaxHistoryMessages     = 200
)

// Clamped returns q with its limits defaulted and capped.
func (q HistoryQuery) Clamped() HistoryQuery {
	clamp := func(v, def, hi int) int {
		if v <= 0 {
			return def
		}
		return min(v, hi)
	}
	q.Limit = clamp(q.Limit, DefaultHistorySessions, MaxHistorySessions)
	q.Messages = clamp(q.Messages, DefaultHistoryMessages, MaxHistoryMessages)
	return q
}

// History is one page of a contact's history.
type History struct {
	Items []HistoryItem `json:"items"`
	// Next is the Before of the next page; "" on the last page.
	Next string `json:"next,omitempty"`
}

// HistoryItem is one session of a contact's history with its newest
// messages, oldest first; MoreMessages says there are older ones.
type HistoryItem struct {
	Session      Session   `json:"session"`
	Messages     []Message `json:"messages"`
	MoreMessages bool      `json:"more_messages"`
}

// ExportFormat names the layout of an Export document.
const ExportFormat = "switchboard.contact-export.v1"

// Export is everything held about a contact, as one document for the
// person who asks for their data: the contact, the contacts merged into
// it, identities, conversations, sessions with their events, messages,
// internal notes and the merges they took part in.
type Export struct {
	Format         string         `json:"format"`
	ExportedAt     time.Time      `json:"exported_at"`
	Contact        Contact        `json:"contact"`
	MergedContacts []Contact      `json:"merged_contacts"`
	Identities     []Identity     `json:"identities"`
	Conversations  []Conversation `json:"conversations"`
	Sessions       []Session      `json:"sessions"`
	Events         []EventRecord  `json:"events"`
	Messages       []Message      `json:"messages"`
	Notes          []Note         `json:"notes"`
	Merges         []Merge        `json:"merges"`
}

// Erasure reports what ContactDelete did.
type Erasure struct {
	// Contacts are the erased contact and the contacts merged into it.
	Contacts []string `json:"contacts"`
	// Deleted rows.
	Identities int64 `json:"identities"`
	Messages   int64 `json:"messages"`
	Notes      int64 `json:"notes"`
	// Outbox rows of the messages (sent or not: they hold the text).
	Outbox int64 `json:"outbox"`
	// Kept, anonymised: sessions and conversations (no personal data, the
	// base of KPIs), session events (data cleared), merge records
	// (changes cleared).
	Sessions      int64 `json:"sessions_kept"`
	Conversations int64 `json:"conversations_kept"`
	Events        int64 `json:"events_anonymised"`
	Merges        int64 `json:"merges_anonymised"`
}

// ContactSettings are a tenant's contact rules.
type ContactSettings struct {
	TenantID string `json:"tenant_id"`
	// AutoMergeUnionID merges contacts whose identities share a WeChat
	// UnionID as soon as the shared id is seen, audited with actor
	// "system". Off by default; phones never merge by themselves.
	AutoMergeUnionID bool       `json:"auto_merge_union_id"`
	UpdatedAt        *time.Time `json:"updated_at,omitempty"`
	UpdatedBy        string     `json:"updated_by,omitempty"`
}

// Contacts applies the contact rules on a ContactStore: validation, the
// clock, and the merge policy for facts seen on inbound messages.
type Contacts struct {
	store ContactStore
	clock clock.Clock
	log   *slog.Logger
}

// NewContacts returns the contact rules over store.
func NewContacts(store ContactStore, clk clock.Clock, log *slog.Logger) *Contacts {
	return &Contacts{store: store, clock: clk, log: log}
}

func (c *Contacts) now() time.Time { return c.clock.Now().UTC() }

// Observed is what Observe made of an inbound message's facts.
type Observed struct {
	Identity Identity
	// Candidates are contacts that may be the same person, left for a
	// supervisor to merge (or not).
	Candidates []MergeCandidate
	// Merges are the merges made by the tenant's auto-merge setting; when
	// there are any, the caller should resolve the customer again (the
	// contact, and maybe the conversation, changed).
	Merges []Merge
}

// Observe records the facts an inbound message carried about its sender's
// identity and applies the merge policy (docs/contacts.md): nothing is
// merged silently, except by union id when the tenant's setting
// AutoMergeUnionID is on, and then audited with actor "system" and the
// oldest contact surviving. Candidates are looked up only when the union
// id or verified phone is new, so the common message costs one statement.
// A phone that cannot be read is dropped (logged), not an error.
func (c *Contacts) Observe(ctx context.Context, tenantID, accountID, externalID string, f IdentityFacts) (Observed, error) {
	const op = "session.Contacts.Observe"
	nf, err := f.Normalize()
	if err != nil && f.Phone != "" {
		c.log.Warn("identity facts: phone dropped", "account", accountID, "err", err)
		f.Phone, f.PhoneVerified = "", false
		nf, err = f.Normalize()
	}
	if err != nil {
		return Observed{}, errs.Wrap(op, err)
	}
	id, changed, err := c.store.IdentityUpdateFacts(ctx, tenantID, accountID, externalID, nf)
	if err != nil {
		return Observed{}, errs.Wrap(op, err)
	}
	out := Observed{Identity: id}
	if !changed {
		return out, nil
	}
	cands, err := c.store.ContactMergeCandidates(ctx, tenantID, id.ContactID)
	if err != nil {
		return out, errs.Wrap(op, err)
	}
	out.Candidates = cands
	if id.UnionID == "" || !slices.ContainsFunc(cands, sharesUnionID(id.UnionID)) {
		return out, nil
	}
	cs, err := c.store.ContactSettingsGet(ctx, tenantID)
	if err != nil {
		return out, errs.Wrap(op, err)
	}
	if !cs.AutoMergeUnionID {
		return out, nil
	}
	return c.autoMerge(ctx, tenantID, id, out)
}

func sharesUnionID(u string) func(MergeCandidate) bool {
	return func(mc MergeCandidate) bool {
		return slices.ContainsFunc(mc.Matches, func(m MergeMatch) bool { return m.Reason == MergeUnionID && m.Value == u })
	}
}

// autoMerge merges every contact sharing the identity's union id into the
// oldest of them. A merge the store refuses (an open session in the way)
// is logged and left as a candidate.
func (c *Contacts) autoMerge(ctx context.Context, tenantID string, id Identity, out Observed) (Observed, error) {
	self, err := c.store.ContactGet(ctx, tenantID, id.ContactID)
	if err != nil {
		return out, errs.Wrap("session.Contacts.Observe", err)
	}
	group := []Contact{self}
	var rest []MergeCandidate
	for _, mc := range out.Candidates {
		if sharesUnionID(id.UnionID)(mc) {
			group = append(group, mc.Contact)
		} else {
			rest = append(rest, mc)
		}
	}
	slices.SortFunc(group, func(a, b Contact) int {
		if d := a.CreatedAt.Compare(b.CreatedAt); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	survivor := group[0]
	for _, m := range group[1:] {
		mg, err := c.store.ContactMerge(ctx, tenantID, survivor.ID, m.ID, MergeUnionID, SystemActor, c.now())
		if err != nil {
			if errs.Is(err, errs.Conflict) || errs.Is(err, errs.NotFound) {
				c.log.Warn("auto-merge by union id refused", "survivor", survivor.ID, "merged", m.ID, "err", err)
				// Candidates are the other contacts than the identity's own.
				other := m
				if m.ID == self.ID {
					other = survivor
				}
				rest = append(rest, MergeCandidate{Contact: other, Matches: []MergeMatch{{Reason: MergeUnionID, Value: id.UnionID}}})
				continue
			}
			return out, errs.Wrap("session.Contacts.Observe", err)
		}
		out.Merges = append(out.Merges, mg)
	}
	out.Candidates = rest
	if len(out.Merges) > 0 {
		if out.Identity, err = c.store.IdentityGet(ctx, tenantID, id.AccountID, id.ExternalID); err != nil {
			return out, errs.Wrap("session.Contacts.Observe", err)
		}
	}
	return out, nil
}

// Merge merges mergedID into survivorID on behalf of actor.
func (c *Contacts) Merge(ctx context.Context, tenantID, survivorID, mergedID string, reason MergeReason, actor string) (Merge, error) {
	const op = "session.Contacts.Merge"
	switch {
	case strings.TrimSpace(survivorID) == "" || strings.TrimSpace(mergedID) == "":
		return Merge{}, errs.E(op, errs.Invalid, "survivor_id and merged_id are required")
	case survivorID == mergedID:
		return Merge{}, errs.E(op, errs.Invalid, "a contact cannot be merged into itself")
	case !reason.Valid():
		return Merge{}, errs.E(op, errs.Invalid, "reason: must be union_id, phone or manual")
	case actor == "":
		return Merge{}, errs.E(op, errs.Invalid, "actor is required")
	}
	return c.store.ContactMerge(ctx, tenantID, survivorID, mergedID, reason, actor, c.now())
}

// Undo reverses a merge on behalf of actor.
func (c *Contacts) Undo(ctx context.Context, tenantID, mergeID, actor string) (Merge, error) {
	if actor == "" {
		return Merge{}, errs.E("session.Contacts.Undo", errs.Invalid, "actor is required")
	}
	return c.store.ContactMergeUndo(ctx, tenantID, mergeID, actor, c.now())
}

// Update changes a contact's profile.
func (c *Contacts) Update(ctx context.Context, tenantID, id string, p ContactPatch) (Contact, error) {
	p, err := p.Normalize()
	if err != nil {
		return Contact{}, err
	}
	return c.store.ContactUpdate(ctx, tenantID, id, p, c.now())
}

// Export returns everything held about a contact, stamped with the time.
func (c *Contacts) Export(ctx context.Context, tenantID, id string) (Export, error) {
	x, err := c.store.ContactExport(ctx, tenantID, id)
	if err != nil {
		return Export{}, err
	}
	x.ExportedAt = c.now()
	return x, nil
}

// Erase erases a contact on behalf of actor.
func (c *Contacts) Erase(ctx context.Context, tenantID, id, actor string) (Erasure, error) {
	if actor == "" {
		return Erasure{}, errs.E("session.Contacts.Erase", errs.Invalid, "actor is required")
	}
	return c.store.ContactDelete(ctx, tenantID, id, actor, c.now())
}

// SetSettings saves a tenant's contact settings on behalf of actor.
func (c *Contacts) SetSettings(ctx context.Context, cs ContactSettings, actor string) (ContactSettings, error) {
	now := c.now()
	cs.UpdatedAt, cs.UpdatedBy = &now, actor
	if err := c.store.ContactSettingsPut(ctx, cs); err != nil {
		return ContactSettings{}, err
	}
	return c.store.ContactSettingsGet(ctx, cs.TenantID)
}
