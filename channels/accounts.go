// This file holds the administration of channel accounts: many accounts
// per channel type ("matrix accounts", DESIGN §3), each validated as a
// whole before it is stored — name, type, public key, session cost, the
// provider-independent AccountSettings and the provider's credentials,
// which the provider packages check through CredentialValidators handed in
// by the composition root (this package imports no provider).

package channels

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Limits of an account's fields.
const (
	MaxAccountNameLen = 100 // characters
	MinPublicKeyLen   = 4
	MaxPublicKeyLen   = 64
	MaxSecretLen      = 256 // bytes
	// MaxCredentialsBytes and MaxSettingsBytes bound the JSON objects; real
	// credentials and settings are a few hundred bytes.
	MaxCredentialsBytes = 16 << 10
	MaxSettingsBytes    = 16 << 10
	// MaxRatePerSec bounds AccountSettings.RatePerSec: no provider accepts
	// more per sender, and a typo of 10000 would defeat the limiter.
	MaxRatePerSec = 1000
	MaxBurst      = 10000
)

// Entry values of AccountSettings.Entry.
const (
	EntryBot   = "bot"
	EntryGroup = "group"
)

// Types lists every channel type, in the order clients show them.
var Types = []Type{WebChat, WhatsApp, WeChatOA, WeComKF, SMS}

// Valid reports whether t is a known channel type.
func (t Type) Valid() bool { return slices.Contains(Types, t) }

// AccountFilter narrows a listing of accounts; zero fields match all.
type AccountFilter struct {
	Enabled *bool
	Type    Type
}

// AccountAdminStore is what AccountService needs beyond AccountStore.
type AccountAdminStore interface {
	AccountStore
	// AccountListFiltered lists a tenant's accounts matching f, oldest first.
	AccountListFiltered(ctx context.Context, tenantID string, f AccountFilter) ([]Account, error)
	// AccountUpdate saves every editable field of a (all but the type and
	// the creation time) if the stored version is still a.Version, and
	// returns the account as stored with the next version. A stale version
	// is errs.Conflict with the stored "version" in the details.
	AccountUpdate(ctx context.Context, a Account) (Account, error)
	// AccountDelete removes an account, its credentials and its cursor.
	// version 0 deletes whatever the version; another stale one is
	// errs.Conflict. An account with open sessions or unsent outbox
	// messages is errs.Conflict: disable it, let them finish, then delete.
	AccountDelete(ctx context.Context, tenantID, id string, version int64) error
}

// GroupChecker tells whether a skill group exists; the account service
// checks default groups through it without depending on package agents.
type GroupChecker interface {
	GroupExists(ctx context.Context, tenantID, groupID string) (bool, error)
}

// CredentialValidators checks provider credentials by channel type: each
// provider package exports ValidateCredentials(json.RawMessage) error and
// the composition root registers it here. A type without a validator
// takes any JSON object (web chat has no provider credentials).
type CredentialValidators map[Type]func(json.RawMessage) error

// Problem is one thing wrong with an account (errs.Problem): the field,
// named from the account down ("settings.rate_per_sec",
// "credentials.app_secret"), and what is wrong.
type Problem = errs.Problem

// ProblemsKey is the errs.Error detail that lists every Problem of an
// invalid account.
const ProblemsKey = errs.ProblemsKey

type problems = errs.Problems

// ProblemsOf returns the problems an Invalid error of the account service
// lists; for any other error one problem with its message.
func ProblemsOf(err error) []Problem { return errs.ProblemsOf(err) }

// NewAccount is what an administrator gives to create an account. Empty
// PublicKey and Secret are generated; a nil Enabled is true; a zero
// SessionCost is DefaultSessionCost.
type NewAccount struct {
	Type           Type
	Name           string
	PublicKey      string
	Secret         string
	Credentials    json.RawMessage
	DefaultGroupID string
	Settings       json.RawMessage
	SessionCost    int
	Enabled        *bool
}

// AccountPatch changes the fields that are set. Credentials set to JSON
// null removes the credentials (so that they can be deleted without
// deleting the account); Settings is merged key by key into the stored
// settings, a null value removing its key (JSON merge patch, one level);
// an empty DefaultGroupID removes the default group. The type of an
// account never changes.
type AccountPatch struct {
	Name           *string
	PublicKey      *string
	Secret         *string
	Credentials    *json.RawMessage
	DefaultGroupID *string
	Settings       *json.RawMessage
	SessionCost    *int
	Enabled        *bool
}

// AccountService administers a tenant's channel accounts: it validates
// every change as a whole and stores it through an AccountAdminStore
// (which keeps the credentials sealed at rest).
type AccountService struct {
	store  AccountAdminStore
	groups GroupChecker
	creds  CredentialValidators
	clock  clock.Clock
}

// NewAccountService returns a service over store. groups, when not nil,
// checks that default groups exist; creds checks provider credentials.
func NewAccountService(store AccountAdminStore, groups GroupChecker, creds CredentialValidators, clk clock.Clock) *AccountService {
	return &AccountService{store: store, groups: groups, creds: creds, clock: clk}
}

// List lists a tenant's accounts matching f.
func (s *AccountService) List(ctx context.Context, tenantID string, f AccountFilter) ([]Account, error) {
	const op = "channels.AccountService.List"
	if f.Type != "" && !f.Type.Valid() {
		return nil, errs.E(op, errs.Invalid, "type: must be one of %s", typeList())
	}
	as, err := s.store.AccountListFiltered(ctx, tenantID, f)
	return as, errs.Wrap(op, err)
}

// Get returns one account of a tenant; another tenant's is NotFound.
func (s *AccountService) Get(ctx context.Context, tenantID, id string) (Account, error) {
	a, err := s.store.AccountGet(ctx, tenantID, id)
	return a, errs.Wrap("channels.AccountService.Get", err)
}

// Create validates and stores a new account, returning it as stored with
// its generated id, public key and secret.
func (s *AccountService) Create(ctx context.Context, tenantID string, in NewAccount) (Account, error) {
	const op = "channels.AccountService.Create"
	a := Account{
		TenantID: tenantID, ID: uuid.Must(uuid.NewV7()).String(), Type: in.Type, Name: strings.TrimSpace(in.Name),
		PublicKey: strings.TrimSpace(in.PublicKey), Secret: in.Secret, Credentials: in.Credentials,
		DefaultGroupID: strings.TrimSpace(in.DefaultGroupID), Settings: in.Settings, SessionCost: in.SessionCost,
		Enabled: in.Enabled == nil || *in.Enabled, Version: 1, CreatedAt: s.clock.Now().UTC(),
	}
	if a.SessionCost == 0 {
		a.SessionCost = DefaultSessionCost
	}
	var err error
	if a.PublicKey == "" {
		if a.PublicKey, err = NewPublicKey(); err != nil {
			return Account{}, errs.Wrap(op, err)
		}
	}
	if a.Secret == "" {
		if a.Secret, err = newSecret(); err != nil {
			return Account{}, errs.Wrap(op, err)
		}
	}
	if a, err = s.check(ctx, op, a); err != nil {
		return Account{}, err
	}
	if err := s.store.AccountCreate(ctx, a); err != nil {
		return Account{}, publicKeyTaken(op, err)
	}
	return a, nil
}

// Update applies p to the account if it is still at version, validates
// the result as a whole and stores it. A stale version is errs.Conflict
// with the current "version" in the details.
func (s *AccountService) Update(ctx context.Context, tenantID, id string, version int64, p AccountPatch) (Account, error) {
	const op = "channels.AccountService.Update"
	a, err := s.store.AccountGet(ctx, tenantID, id)
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	if a.Version != version {
		return Account{}, errs.E(op, errs.Conflict, "channel account %s changed: version %d is stale, the current version is %d",
			id, version, a.Version).With("version", a.Version)
	}
	if p.Name != nil {
		a.Name = strings.TrimSpace(*p.Name)
	}
	if p.PublicKey != nil {
		a.PublicKey = strings.TrimSpace(*p.PublicKey)
	}
	if p.Secret != nil {
		a.Secret = *p.Secret
	}
	if p.Credentials != nil {
		a.Credentials = *p.Credentials
		if isNull(a.Credentials) {
			a.Credentials = nil
		}
	}
	if p.DefaultGroupID != nil {
		a.DefaultGroupID = strings.TrimSpace(*p.DefaultGroupID)
	}
	var merged problems
	if p.Settings != nil {
		if a.Settings, err = mergeSettings(a.Settings, *p.Settings); err != nil {
			merged.Add("settings", "%s", errs.MessageOf(err))
		}
	}
	if p.SessionCost != nil {
		a.SessionCost = *p.SessionCost
	}
	if p.Enabled != nil {
		a.Enabled = *p.Enabled
	}
	if a, err = s.check(ctx, op, a); err != nil || len(merged) > 0 {
		if err != nil && !errs.Is(err, errs.Invalid) {
			return Account{}, err
		}
		if err != nil {
			merged = append(merged, ProblemsOf(err)...)
		}
		return Account{}, merged.Err(op)
	}
	now := s.clock.Now().UTC()
	a.UpdatedAt = &now
	out, err := s.store.AccountUpdate(ctx, a)
	if err != nil {
		return Account{}, publicKeyTaken(op, err)
	}
	return out, nil
}

// Delete removes an account with its credentials, if it is at version (0:
// any version). It is refused (errs.Conflict) while another account falls
// back to it, and by the store while it has open sessions or unsent
// messages: disabling an account is the way to stop it at once.
func (s *AccountService) Delete(ctx context.Context, tenantID, id string, version int64) error {
	const op = "channels.AccountService.Delete"
	a, err := s.store.AccountGet(ctx, tenantID, id)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if version != 0 && a.Version != version {
		return errs.E(op, errs.Conflict, "channel account %s changed: version %d is stale, the current version is %d",
			id, version, a.Version).With("version", a.Version)
	}
	all, err := s.store.AccountList(ctx, tenantID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	var users []string
	for _, o := range all {
		if o.ID == id {
			continue
		}
		if st, err := ParseAccountSettings(o.Settings); err == nil && st.FallbackAccountID == id {
			users = append(users, o.Name)
		}
	}
	if len(users) > 0 {
		return errs.E(op, errs.Conflict, "accounts %s fall back to this account; change their fallback first",
			strings.Join(users, ", ")).With("fallback_of", users)
	}
	return errs.Wrap(op, s.store.AccountDelete(ctx, tenantID, id, version))
}

// publicKeyTaken reports a unique violation on create or update as the
// public key being taken: it is the only unique column an administrator
// chooses.
func publicKeyTaken(op string, err error) error {
	if errs.Is(err, errs.Duplicate) {
		return &errs.Error{Op: op, Code: errs.Duplicate, Msg: "public_key: already used by another account", Err: err}
	}
	return errs.Wrap(op, err)
}

// Validate checks an account as a whole and reports every problem at once
// (errs.Invalid with the Problems in the details). It looks up the default
// group and the fallback account, so it needs the tenant's data.
func (s *AccountService) Validate(ctx context.Context, a Account) error {
	_, err := s.check(ctx, "channels.AccountService.Validate", a)
	return err
}

// check validates a and returns it normalised (settings canonical,
// credentials compacted).
func (s *AccountService) check(ctx context.Context, op string, a Account) (Account, error) {
	var p problems
	if a.TenantID == "" {
		p.Add("tenant_id", "must not be empty")
	}
	checkName(&p, a.Name)
	if !a.Type.Valid() {
		p.Add("type", "must be one of %s", typeList())
	}
	checkPublicKey(&p, a.PublicKey)
	if len(a.Secret) > MaxSecretLen {
		p.Add("secret", "must be at most %d bytes", MaxSecretLen)
	}
	if err := ValidateSessionCost(a.SessionCost); err != nil {
		p.Add("session_cost", "must be between %d and %d", MinSessionCost, MaxSessionCost)
	}
	if a.DefaultGroupID != "" && s.groups != nil {
		ok, err := s.groups.GroupExists(ctx, a.TenantID, a.DefaultGroupID)
		if err != nil {
			return Account{}, errs.Wrap(op, err)
		}
		if !ok {
			p.Add("default_group_id", "no skill group %q", a.DefaultGroupID)
		}
	}
	settings, st, sp := normaliseSettings(a.Settings)
	p = append(p, sp...)
	a.Settings = settings
	if sp == nil {
		if err := s.checkSettings(ctx, &p, a, st); err != nil {
			return Account{}, errs.Wrap(op, err)
		}
	}
	a.Credentials = s.checkCredentials(&p, a)
	return a, p.Err(op)
}

func checkName(p *problems, name string) {
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		p.Add("name", "must not be empty")
	case n > MaxAccountNameLen:
		p.Add("name", "must be at most %d characters", MaxAccountNameLen)
	case !utf8.ValidString(name):
		p.Add("name", "must be UTF-8")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		p.Add("name", "must not contain control characters")
	}
}

// checkPublicKey: the key appears in URLs (widget, webhook path), so it is
// URL-safe without escaping.
func checkPublicKey(p *problems, key string) {
	if len(key) < MinPublicKeyLen || len(key) > MaxPublicKeyLen {
		p.Add("public_key", "must be %d to %d characters", MinPublicKeyLen, MaxPublicKeyLen)
		return
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			p.Add("public_key", "may hold only A-Z a-z 0-9 - _")
			return
		}
	}
}

// checkSettings checks what needs the tenant's data or other fields: the
// entry group and the fallback account.
func (s *AccountService) checkSettings(ctx context.Context, p *problems, a Account, st AccountSettings) error {
	if st.Entry == EntryGroup && a.DefaultGroupID == "" {
		p.Add("settings.entry", "%q needs default_group_id", EntryGroup)
	}
	if st.FallbackAccountID == "" {
		return nil
	}
	if st.FallbackAccountID == a.ID {
		p.Add("settings.fallback_account_id", "must be another account")
		return nil
	}
	fb, err := s.store.AccountGet(ctx, a.TenantID, st.FallbackAccountID)
	switch {
	case errs.Is(err, errs.NotFound):
		p.Add("settings.fallback_account_id", "no channel account %q", st.FallbackAccountID)
	case err != nil:
		return err
	case fb.Type != SMS:
		p.Add("settings.fallback_account_id", "must be an %s account, %q is %s", SMS, st.FallbackAccountID, fb.Type)
	}
	return nil
}

// checkCredentials checks the credentials object and hands it to the
// type's validator: always when credentials are given, and for an enabled
// account also when they are missing (the validator says what is
// required). It returns the credentials compacted, nil for none.
func (s *AccountService) checkCredentials(p *problems, a Account) json.RawMessage {
	c := a.Credentials
	if isNull(c) {
		c = nil
	}
	if c != nil {
		if len(c) > MaxCredentialsBytes {
			p.Add("credentials", "must be at most %d bytes", MaxCredentialsBytes)
			return c
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c, &obj); err != nil || obj == nil {
			p.Add("credentials", "must be a JSON object")
			return c
		}
		var b bytes.Buffer
		if err := json.Compact(&b, c); err == nil {
			c = b.Bytes()
		}
	}
	validate := s.creds[a.Type]
	if validate == nil || (c == nil && !a.Enabled) {
		return c
	}
	in := c
	if in == nil {
		in = json.RawMessage(`{}`)
	}
	if err := validate(in); err != nil {
		field, msg := "credentials", errs.MessageOf(err)
		// Provider messages name their field ("credentials.app_secret: required").
		if f, m, ok := strings.Cut(msg, ": "); ok && (f == "credentials" || strings.HasPrefix(f, "credentials.")) {
			field, msg = f, m
		}
		if c == nil {
			msg = "required while the account is enabled: " + msg
		}
		p.Add(field, "%s", msg)
	}
	return c
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// settingsKeys are the keys of AccountSettings; other keys of
// Account.Settings belong to the provider and pass through.
var settingsKeys = []string{"rate_per_sec", "burst", "fallback_account_id", "hours", "entry"}

// ParseAccountSettings reads the provider-independent settings of an
// account's Settings (empty: all defaults). Provider keys are ignored.
func ParseAccountSettings(raw json.RawMessage) (AccountSettings, error) {
	_, st, p := normaliseSettings(raw)
	return st, p.Err("channels.ParseAccountSettings")
}

// normaliseSettings checks a settings object field by field and returns
// it canonical: hours as the schedule's canonical JSON text (given as a
// string or as an object), other keys as given. Problems name the field.
func normaliseSettings(raw json.RawMessage) (json.RawMessage, AccountSettings, problems) {
	var st AccountSettings
	var p problems
	if isNull(raw) {
		return json.RawMessage(`{}`), st, nil
	}
	if len(raw) > MaxSettingsBytes {
		p.Add("settings", "must be at most %d bytes", MaxSettingsBytes)
		return raw, st, p
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		p.Add("settings", "must be a JSON object")
		return raw, st, p
	}
	for _, k := range settingsKeys {
		v, ok := obj[k]
		if !ok || isNull(v) {
			delete(obj, k)
			continue
		}
		field := "settings." + k
		switch k {
		case "rate_per_sec":
			if json.Unmarshal(v, &st.RatePerSec) != nil {
				p.Add(field, "must be a number")
			} else if st.RatePerSec < 0 || st.RatePerSec > MaxRatePerSec {
				p.Add(field, "must be > 0 and <= %d (0 or absent: the channel's default)", MaxRatePerSec)
			}
		case "burst":
			if json.Unmarshal(v, &st.Burst) != nil {
				p.Add(field, "must be an integer")
			} else if st.Burst < 0 || st.Burst > MaxBurst {
				p.Add(field, "must be between 1 and %d (0 or absent: the default)", MaxBurst)
			}
		case "fallback_account_id":
			if json.Unmarshal(v, &st.FallbackAccountID) != nil {
				p.Add(field, "must be a string")
			}
		case "entry":
			if json.Unmarshal(v, &st.Entry) != nil {
				p.Add(field, "must be a string")
			} else if st.Entry != "" && st.Entry != EntryBot && st.Entry != EntryGroup {
				p.Add(field, "must be %q or %q", EntryBot, EntryGroup)
			}
		case "hours":
			text := string(v)
			var s string
			if json.Unmarshal(v, &s) == nil {
				text = s
			}
			h, err := acd.ParseHours(text)
			if err != nil {
				msg := errs.MessageOf(err)
				msg = strings.TrimPrefix(strings.TrimPrefix(msg, "hours: "), "hours.")
				p.Add(field, "%s", msg)
				continue
			}
			if h == nil {
				delete(obj, k)
				continue
			}
			st.Hours = h.String()
			canon, _ := json.Marshal(st.Hours)
			obj[k] = canon
		}
	}
	if p != nil {
		return raw, st, p
	}
	out, err := json.Marshal(obj)
	if err != nil {
		p.Add("settings", "%v", err)
		return raw, st, p
	}
	return out, st, nil
}

// mergeSettings applies a one-level JSON merge patch to settings.
func mergeSettings(cur, patch json.RawMessage) (json.RawMessage, error) {
	const op = "channels.mergeSettings"
	if isNull(patch) {
		return json.RawMessage(`{}`), nil
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(patch, &p); err != nil || p == nil {
		return nil, errs.E(op, errs.Invalid, "must be a JSON object")
	}
	obj := map[string]json.RawMessage{}
	if !isNull(cur) {
		if err := json.Unmarshal(cur, &obj); err != nil || obj == nil {
			obj = map[string]json.RawMessage{}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if isNull(p[k]) {
			delete(obj, k)
		} else {
			obj[k] = p[k]
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, "%v", err)
	}
	return out, nil
}

// CredentialFields lists the top-level keys of a credentials object that
// hold a value (not null, not ""), sorted: what clients are shown instead
// of the credentials themselves.
func CredentialFields(raw json.RawMessage) []string {
	var obj map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &obj) != nil {
		return []string{}
	}
	out := make([]string, 0, len(obj))
	for k, v := range obj {
		if t := bytes.TrimSpace(v); isNull(t) || string(t) == `""` {
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// NewPublicKey returns a random URL-safe public key (24 characters, 144
// bits: not guessable, so webhook paths cannot be enumerated).
func NewPublicKey() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newSecret returns a random account secret (256 bits, hex).
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func typeList() string {
	s := make([]string, len(Types))
	for i, t := range Types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
