package agents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Defaults of ServiceOptions.
const (
	DefaultTokenTTL  = 12 * time.Hour // one long shift
	DefaultCacheTTL  = 5 * time.Second
	DefaultCacheSize = 10000
)

// tokenBytes is the entropy of a login token.
const tokenBytes = 32

// tokenEncoding is strict so that each token has exactly one spelling.
var tokenEncoding = base64.RawURLEncoding.Strict()

// ServiceOptions tune the Service; the zero value gives the defaults.
type ServiceOptions struct {
	// TokenTTL is how long a login token is valid (default 12h).
	TokenTTL time.Duration
	// BcryptCost is the bcrypt work factor for new password hashes
	// (default bcrypt.DefaultCost; clamped to bcrypt's range). Tests use
	// bcrypt.MinCost to stay fast.
	BcryptCost int
	// CacheTTL is how long a successful Authenticate is remembered in
	// process (default 5s; negative disables the cache). It bounds how long
	// a token revoked on another node, a disabled account or a changed role
	// keeps its old effect here.
	CacheTTL time.Duration
	// CacheSize bounds the number of remembered tokens (default 10000).
	CacheSize int
}

func (o ServiceOptions) withDefaults() ServiceOptions {
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	switch {
	case o.BcryptCost == 0:
		o.BcryptCost = bcrypt.DefaultCost
	case o.BcryptCost < bcrypt.MinCost:
		o.BcryptCost = bcrypt.MinCost
	case o.BcryptCost > bcrypt.MaxCost:
		o.BcryptCost = bcrypt.MaxCost
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	return o
}

// Principal is who a request acts for, as established by Authenticate. It
// is all the HTTP layer needs to scope a request to a tenant and check a
// role.
type Principal struct {
	TenantID string `json:"tenant_id"`
	AgentID  string `json:"agent_id"`
	Role     Role   `json:"role"`
}

// Can reports whether the principal's role is at least least, the least
// powerful role allowed to perform an action.
func (p Principal) Can(least Role) bool { return p.Role.AtLeast(least) }

// NewAgent is the input for creating an account. Zero values get defaults:
// display name = username, role = agent, max sessions = 3, skill weight = 1.
type NewAgent struct {
	Username    string  `json:"username"`
	DisplayName string  `json:"display_name"`
	Password    string  `json:"password"`
	Role        Role    `json:"role"`
	MaxSessions int     `json:"max_sessions"`
	Skills      []Skill `json:"skills"`
}

// Service creates accounts, logs agents in and authenticates requests. It
// owns everything that touches passwords and tokens, so that no other code
// handles a plaintext credential. It is safe for concurrent use.
type Service struct {
	store Store
	clk   clock.Clock
	opts  ServiceOptions

	dummyOnce sync.Once
	dummyHash []byte // compared against for unknown users; set by dummyOnce

	mu sync.Mutex
	// cache remembers recent successful authentications by token hash.
	// guarded by mu
	cache map[string]cacheEntry
	// gen counts invalidations; a lookup that raced with one does not
	// cache its (possibly stale) result. guarded by mu
	gen uint64
	// lastSweep is when expired entries were last swept. guarded by mu
	lastSweep time.Time
}

type cacheEntry struct {
	p     Principal
	until time.Time
}

// NewService returns a Service over store, telling time by clk.
func NewService(store Store, clk clock.Clock, opts ServiceOptions) *Service {
	return &Service{
		store: store,
		clk:   clk,
		opts:  opts.withDefaults(),
		cache: map[string]cacheEntry{},
	}
}

// normalizeUsername makes logins forgiving of case and stray spaces while
// the stored name stays in its canonical lower-case form.
func normalizeUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// now is the service time in UTC at the precision the store keeps, so
// values returned to callers equal the values read back later.
func (s *Service) now() time.Time { return s.clk.Now().UTC().Truncate(time.Microsecond) }

// CreateAgent validates in, hashes the password with bcrypt and stores a new
// offline agent in tenantID with a generated id.
func (s *Service) CreateAgent(ctx context.Context, tenantID string, in NewAgent) (Agent, error) {
	const op = "agents.CreateAgent"
	username := normalizeUsername(in.Username)
	if err := ValidateUsername(username); err != nil {
		return Agent{}, errs.Wrap(op, err)
	}
	if err := ValidatePassword(in.Password); err != nil {
		return Agent{}, errs.Wrap(op, err)
	}
	now := s.now()
	a := Agent{
		TenantID:    tenantID,
		ID:          uuid.NewString(),
		Username:    username,
		DisplayName: strings.TrimSpace(in.DisplayName),
		Role:        in.Role,
		MaxSessions: in.MaxSessions,
		State:       StateOffline,
		StateSince:  now,
		Skills:      NormalizeSkills(in.Skills),
		CreatedAt:   now,
	}
	if a.DisplayName == "" {
		a.DisplayName = username
	}
	if a.Role == "" {
		a.Role = RoleAgent
	}
	if a.MaxSessions == 0 {
		a.MaxSessions = DefaultMaxSessions
	}
	if err := a.Validate(); err != nil {
		return Agent{}, errs.Wrap(op, err)
	}
	hash, err := s.hashPassword(in.Password)
	if err != nil {
		return Agent{}, errs.Wrap(op, err)
	}
	created, err := s.store.AgentCreate(ctx, a, hash)
	if err != nil {
		return Agent{}, errs.Wrap(op, err)
	}
	return created, nil
}

// SetPassword validates and stores a new password for an agent and revokes
// all of the agent's tokens, so a changed password ends every session that
// may have been opened with the old one.
func (s *Service) SetPassword(ctx context.Context, tenantID, agentID, password string) error {
	const op = "agents.SetPassword"
	if err := ValidatePassword(password); err != nil {
		return errs.Wrap(op, err)
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if err := s.store.AgentSetPassword(ctx, tenantID, agentID, hash); err != nil {
		return errs.Wrap(op, err)
	}
	if _, err := s.RevokeAll(ctx, tenantID, agentID); err != nil {
		return errs.Wrap(op, err)
	}
	return nil
}

func (s *Service) hashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.opts.BcryptCost)
	if err != nil {
		return "", errs.E("agents.hashPassword", errs.Invalid, "password: %v", err)
	}
	return string(h), nil
}

// burnTime compares password against a fixed hash so that a login for an
// unknown user takes as long as one with a wrong password, and response
// times do not reveal which usernames exist.
func (s *Service) burnTime(password string) {
	s.dummyOnce.Do(func() {
		s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("switchboard-dummy-password"), s.opts.BcryptCost)
	})
	_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
}

// Login checks username and password and issues a token valid for
// TokenTTL. tenantID may be empty when the username exists in one tenant
// only; if it exists in several the error is Invalid "tenant required". A
// wrong username and a wrong password give the same Unauthorized error, so
// the answer does not reveal which usernames exist; a disabled account is
// Unauthorized too.
func (s *Service) Login(ctx context.Context, tenantID, username, password string) (string, time.Time, Agent, error) {
	const op = "agents.Login"
	bad := func() (string, time.Time, Agent, error) {
		return "", time.Time{}, Agent{}, errs.E(op, errs.Unauthorized, "invalid username or password")
	}
	fail := func(err error) (string, time.Time, Agent, error) {
		return "", time.Time{}, Agent{}, errs.Wrap(op, err)
	}
	username = normalizeUsername(username)
	if tenantID == "" {
		found, err := s.store.AgentFindByUsername(ctx, username)
		if err != nil {
			return fail(err)
		}
		switch len(found) {
		case 0:
			s.burnTime(password)
			return bad()
		case 1:
			tenantID = found[0].TenantID
		default:
			return "", time.Time{}, Agent{}, errs.E(op, errs.Invalid, "tenant required: the username exists in more than one tenant")
		}
	}
	a, hash, err := s.store.AgentGetByUsername(ctx, tenantID, username)
	if errs.Is(err, errs.NotFound) {
		s.burnTime(password)
		return bad()
	}
	if err != nil {
		return fail(err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return bad()
	}
	if a.Disabled {
		return "", time.Time{}, Agent{}, errs.E(op, errs.Unauthorized, "account disabled")
	}
	token, tokenHash, err := newToken()
	if err != nil {
		return fail(err)
	}
	now := s.now()
	t := Token{
		Hash:      tokenHash,
		TenantID:  a.TenantID,
		AgentID:   a.ID,
		CreatedAt: now,
		ExpiresAt: now.Add(s.opts.TokenTTL),
	}
	if err := s.store.TokenCreate(ctx, t); err != nil {
		return fail(err)
	}
	return token, t.ExpiresAt, a, nil
}

// newToken returns a fresh random token and the hash under which it is
// stored.
func newToken() (token, hash string, err error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", errs.E("agents.newToken", errs.Internal, "read random: %v", err)
	}
	token = tokenEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the hex SHA-256 under which a token is stored. A fast hash
// is enough: tokens are 256 random bits, not guessable passwords.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether token could have been issued by Login, so that
// garbage is refused without a database round trip.
func wellFormed(token string) bool {
	if tokenEncoding.EncodedLen(tokenBytes) != len(token) {
		return false
	}
	b, err := tokenEncoding.DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

// Authenticate resolves a token to the principal it was issued to. Unknown,
// malformed, expired and revoked tokens, and tokens of disabled or deleted
// accounts, are Unauthorized. Successful lookups are remembered in process
// for CacheTTL (never past the token's expiry) to keep hot REST paths off
// the database; Logout and RevokeAll on this node take effect at once, on
// other nodes within CacheTTL.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	const op = "agents.Authenticate"
	if !wellFormed(token) {
		return Principal{}, errs.E(op, errs.Unauthorized, "invalid token")
	}
	hash := HashToken(token)
	now := s.clk.Now()
	p, gen, ok := s.cached(hash, now)
	if ok {
		return p, nil
	}
	t, err := s.store.TokenGet(ctx, hash)
	if errs.Is(err, errs.NotFound) {
		return Principal{}, errs.E(op, errs.Unauthorized, "invalid token")
	}
	if err != nil {
		return Principal{}, errs.Wrap(op, err)
	}
	if t.RevokedAt != nil {
		return Principal{}, errs.E(op, errs.Unauthorized, "token revoked")
	}
	if !t.ValidAt(now) {
		return Principal{}, errs.E(op, errs.Unauthorized, "token expired")
	}
	a, err := s.store.AgentGet(ctx, t.TenantID, t.AgentID)
	if errs.Is(err, errs.NotFound) {
		return Principal{}, errs.E(op, errs.Unauthorized, "invalid token")
	}
	if err != nil {
		return Principal{}, errs.Wrap(op, err)
	}
	if a.Disabled {
		return Principal{}, errs.E(op, errs.Unauthorized, "account disabled")
	}
	p = Principal{TenantID: a.TenantID, AgentID: a.ID, Role: a.Role}
	until := now.Add(s.opts.CacheTTL)
	if t.ExpiresAt.Before(until) {
		until = t.ExpiresAt
	}
	s.remember(hash, p, until, gen, now)
	return p, nil
}

// Logout revokes token and forgets it here at once.
func (s *Service) Logout(ctx context.Context, token string) error {
	const op = "agents.Logout"
	if !wellFormed(token) {
		return errs.E(op, errs.Unauthorized, "invalid token")
	}
	hash := HashToken(token)
	err := s.store.TokenRevoke(ctx, hash, s.now())
	s.forgetToken(hash)
	if errs.Is(err, errs.NotFound) {
		return errs.E(op, errs.Unauthorized, "invalid token")
	}
	return errs.Wrap(op, err)
}

// RevokeAll revokes every token of an agent (password change, disabling,
// "log out everywhere") and returns how many were revoked.
func (s *Service) RevokeAll(ctx context.Context, tenantID, agentID string) (int, error) {
	n, err := s.store.TokenRevokeAgent(ctx, tenantID, agentID, s.now())
	s.forgetAgent(tenantID, agentID)
	if err != nil {
		return 0, errs.Wrap("agents.RevokeAll", err)
	}
	return n, nil
}

// cached returns a remembered principal and the current invalidation
// generation, which the caller hands back to remember.
func (s *Service) cached(hash string, now time.Time) (Principal, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache[hash]
	if ok && now.Before(e.until) {
		return e.p, s.gen, true
	}
	if ok {
		delete(s.cache, hash)
	}
	return Principal{}, s.gen, false
}

// remember caches p until until, unless an invalidation happened since the
// lookup began at generation gen: the lookup may have read a token that
// was revoked just after.
func (s *Service) remember(hash string, p Principal, until time.Time, gen uint64, now time.Time) {
	if s.opts.CacheTTL < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if len(s.cache) >= s.opts.CacheSize {
		// Sweep expired entries at most once per TTL, so a cache full of
		// live entries does not cost a full scan on every miss.
		if now.Sub(s.lastSweep) >= s.opts.CacheTTL {
			s.lastSweep = now
			for k, e := range s.cache {
				if !now.Before(e.until) {
					delete(s.cache, k)
				}
			}
		}
		// Still full: drop an arbitrary entry; it costs one lookup later.
		for k := range s.cache {
			if len(s.cache) < s.opts.CacheSize {
				break
			}
			delete(s.cache, k)
		}
	}
	s.cache[hash] = cacheEntry{p: p, until: until}
}

// forgetToken drops one token from the cache and starts a new
// invalidation generation.
func (s *Service) forgetToken(hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	delete(s.cache, hash)
}

// forgetAgent drops every cached token of an agent and starts a new
// invalidation generation.
func (s *Service) forgetAgent(tenantID, agentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	for k, e := range s.cache {
		if e.p.TenantID == tenantID && e.p.AgentID == agentID {
			delete(s.cache, k)
		}
	}
}
