package agents

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/clock"
)

// tokenStore answers the two lookups Authenticate makes and counts them;
// every other Store method panics through the nil embedded interface.
type tokenStore struct {
	Store
	lookups atomic.Int64
	expires time.Time
	// beforeReturn runs inside TokenGet, to interleave an invalidation.
	beforeReturn func()
}

func (s *tokenStore) TokenGet(_ context.Context, hash string) (Token, error) {
	s.lookups.Add(1)
	if s.beforeReturn != nil {
		s.beforeReturn()
	}
	return Token{Hash: hash, TenantID: "t1", AgentID: "a-" + hash[:8], ExpiresAt: s.expires}, nil
}

func (s *tokenStore) AgentGet(_ context.Context, tenantID, id string) (Agent, error) {
	return Agent{TenantID: tenantID, ID: id, Role: RoleAgent}, nil
}

func (s *tokenStore) TokenRevokeAgent(context.Context, string, string, time.Time) (int, error) {
	return 1, nil
}

func testToken(i int) string {
	var b [tokenBytes]byte
	copy(b[:], fmt.Sprintf("token-%d", i))
	return tokenEncoding.EncodeToString(b[:])
}

func TestCacheHitsAndBound(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &tokenStore{expires: now.Add(time.Hour)}
	clk := clock.NewFake(now)
	svc := NewService(st, clk, ServiceOptions{CacheTTL: 5 * time.Second, CacheSize: 3})
	ctx := t.Context()

	auth := func(i int) {
		t.Helper()
		if _, err := svc.Authenticate(ctx, testToken(i)); err != nil {
			t.Fatalf("Authenticate(%d): %v", i, err)
		}
	}
	auth(0)
	auth(0)
	if n := st.lookups.Load(); n != 1 {
		t.Errorf("two authentications made %d lookups, want 1 (second from cache)", n)
	}
	for i := range 10 {
		auth(i)
	}
	if n := len(svc.cache); n > 3 {
		t.Errorf("cache holds %d entries, bound is 3", n)
	}
	clk.Advance(5 * time.Second)
	before := st.lookups.Load()
	auth(9)
	if st.lookups.Load() != before+1 {
		t.Errorf("entry served after its cache TTL")
	}
}

func TestCacheDisabled(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &tokenStore{expires: now.Add(time.Hour)}
	svc := NewService(st, clock.NewFake(now), ServiceOptions{CacheTTL: -1})
	for range 3 {
		if _, err := svc.Authenticate(t.Context(), testToken(1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.lookups.Load(); n != 3 {
		t.Errorf("lookups = %d, want 3 with the cache disabled", n)
	}
}

// TestCacheSkipsRacedLookup: a lookup that read a token before a concurrent
// RevokeAll must not cache what it read.
func TestCacheSkipsRacedLookup(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &tokenStore{expires: now.Add(time.Hour)}
	svc := NewService(st, clock.NewFake(now), ServiceOptions{})
	tok := testToken(1)
	agentID := "a-" + HashToken(tok)[:8]
	st.beforeReturn = func() {
		if _, err := svc.RevokeAll(t.Context(), "t1", agentID); err != nil {
			t.Error(err)
		}
	}
	if _, err := svc.Authenticate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if len(svc.cache) != 0 {
		t.Errorf("a lookup that raced with RevokeAll was cached")
	}
}
