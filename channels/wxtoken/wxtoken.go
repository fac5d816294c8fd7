// Package wxtoken keeps the access_token of WeChat and WeCom apps, once for
// the whole cluster. Both providers hand out a token valid for about two
// hours, cap how often it may be fetched, and (for the classic endpoints)
// invalidate the previous token when a new one is fetched: if every node
// fetched its own, nodes would keep knocking each other's tokens out. So
// the token lives in Redis, one node fetches it under a Redis lock while
// the others wait and read it, and a refused token is dropped only if it
// is still the cached one, so that a refresh happens once, not once per
// node.
package wxtoken

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

var (
	//go:embed lua/invalidate.lua
	invalidateLua    string
	invalidateScript = redis.NewScript(invalidateLua)

	//go:embed lua/unlock.lua
	unlockLua    string
	unlockScript = redis.NewScript(unlockLua)
)

// Fetch asks the provider for a fresh token and its lifetime (expires_in).
// The cache calls it on one node at a time per key.
type Fetch func(ctx context.Context) (token string, expiresIn time.Duration, err error)

// Defaults of the Cache's tunables.
const (
	// DefaultMargin is taken off the provider's expires_in: WeChat's stable
	// token endpoint starts handing out the next token 5 minutes before the
	// current one expires, and clocks between nodes drift a little.
	DefaultMargin = 5 * time.Minute
	// DefaultMemoTTL bounds how long a node trusts its in-process copy
	// without asking Redis, so a token replaced by another node is picked
	// up soon even before it is refused.
	DefaultMemoTTL = time.Minute
	// DefaultLockTTL outlives a slow token fetch (HTTP timeouts are
	// seconds); a node that dies holding the lock delays the others by
	// this much at most.
	DefaultLockTTL = 10 * time.Second
	// DefaultPoll is how often a waiting node looks for the fetched token.
	DefaultPoll = 20 * time.Millisecond
	// DefaultMaxWait bounds a wait for another node's fetch: past the lock's
	// lifetime the waiter takes the lock itself, so this is only reached
	// when Redis keeps refusing.
	DefaultMaxWait = 3 * DefaultLockTTL
)

// Cache is the cluster-wide token cache. The tunable fields may be changed
// after New, before the first call.
type Cache struct {
	rdb    redis.UniversalClient
	prefix string
	clk    clock.Clock
	log    *slog.Logger
	node   string // identifies this process in lock values

	// Margin is taken off expires_in before storing (DefaultMargin); the
	// stored lifetime is never less than half of expires_in.
	Margin time.Duration
	// MemoTTL bounds the in-process copy (DefaultMemoTTL).
	MemoTTL time.Duration
	// LockTTL is the lifetime of the fetch lock (DefaultLockTTL).
	LockTTL time.Duration
	// Poll is the interval at which waiters re-read Redis (DefaultPoll).
	Poll time.Duration
	// MaxWait bounds one Token call's wait for the lock (DefaultMaxWait).
	MaxWait time.Duration

	mu     sync.Mutex
	memo   map[string]memo    // by key; guarded by mu
	flight map[string]*flight // by key: this process's load under way; guarded by mu
}

// memo is a node's copy of a cached token, trusted until until.
type memo struct {
	token string
	until time.Time
}

// flight is one load of a key in this process; callers of Token for the
// same key wait for it instead of each taking their turn at the Redis lock.
type flight struct {
	done  chan struct{}
	token string
	err   error
}

// New returns a cache storing under prefix (the Redis client's key prefix)
// with the default tunables. clk decides when a stored token has expired.
func New(rdb redis.UniversalClient, prefix string, clk clock.Clock, log *slog.Logger) *Cache {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Cache{
		rdb: rdb, prefix: prefix, clk: clk, log: log, node: hex.EncodeToString(b[:]),
		Margin: DefaultMargin, MemoTTL: DefaultMemoTTL, LockTTL: DefaultLockTTL, Poll: DefaultPoll, MaxWait: DefaultMaxWait,
		memo: map[string]memo{}, flight: map[string]*flight{},
	}
}

// Key is the Redis hash holding key's token (fields "token" and "exp",
// the expiry in Unix milliseconds). key is hash-tagged so the token and
// its lock share a Cluster slot.
func (c *Cache) Key(key string) string { return c.prefix + ":wxtoken:{" + key + "}" }

// lockKey is the fetch lock of key.
func (c *Cache) lockKey(key string) string { return c.Key(key) + ":lock" }

// Token returns the cached token of key (one app id or corp id; the caller
// names it), fetching it through fetch when no node has a valid one. Calls
// in one process share one load; across processes a Redis lock (SET NX
// PX) lets one node fetch while the others poll for the result. An error
// of fetch is returned as is, wrapped.
func (c *Cache) Token(ctx context.Context, key string, fetch Fetch) (string, error) {
	const op = "wxtoken.Token"
	for {
		c.mu.Lock()
		if m, ok := c.memo[key]; ok && c.clk.Now().Before(m.until) {
			c.mu.Unlock()
			return m.token, nil
		}
		if f, ok := c.flight[key]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", errs.Wrap(op, ctx.Err())
			}
			if f.err != nil && isContextErr(f.err) && ctx.Err() == nil {
				continue // the loader's caller gave up, this one has not
			}
			return f.token, f.err
		}
		f := &flight{done: make(chan struct{})}
		c.flight[key] = f
		c.mu.Unlock()

		func() {
			// Even if fetch panics, waiters must not hang on the flight.
			defer func() {
				c.mu.Lock()
				delete(c.flight, key)
				c.mu.Unlock()
				close(f.done)
			}()
			f.err = errs.E(op, errs.Internal, "token load did not finish")
			f.token, f.err = c.load(ctx, key, fetch)
		}()
		return f.token, f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// load reads the token from Redis or, holding the lock, fetches it.
func (c *Cache) load(ctx context.Context, key string, fetch Fetch) (string, error) {
	const op = "wxtoken.load"
	var b [8]byte
	_, _ = rand.Read(b[:])
	owner := c.node + ":" + hex.EncodeToString(b[:])
	giveUp := time.Now().Add(c.MaxWait)
	var poll *time.Timer
	for {
		if tok, ok, err := c.read(ctx, key); err != nil {
			return "", err
		} else if ok {
			return tok, nil
		}
		locked, err := c.rdb.SetNX(ctx, c.lockKey(key), owner, c.LockTTL).Result()
		if err != nil {
			return "", c.redisErr(ctx, op, err)
		}
		if locked {
			return c.fetchLocked(ctx, key, owner, fetch)
		}
		if time.Now().After(giveUp) {
			return "", errs.E(op, errs.Unavailable, "token %s: another node held the fetch lock for over %s", key, c.MaxWait)
		}
		if poll == nil {
			poll = time.NewTimer(c.Poll)
			defer poll.Stop()
		} else {
			poll.Reset(c.Poll)
		}
		select {
		case <-poll.C:
		case <-ctx.Done():
			return "", errs.Wrap(op, ctx.Err())
		}
	}
}

// read looks the token up in Redis and memoises a valid one. A token past
// its expiry by this node's clock is a miss even if Redis still holds it
// (the in-process Redis of the embedded mode expires nothing by itself).
func (c *Cache) read(ctx context.Context, key string) (string, bool, error) {
	vals, err := c.rdb.HMGet(ctx, c.Key(key), "token", "exp").Result()
	if err != nil {
		return "", false, c.redisErr(ctx, "wxtoken.read", err)
	}
	tok, _ := vals[0].(string)
	expStr, _ := vals[1].(string)
	expMs, err := strconv.ParseInt(expStr, 10, 64)
	if tok == "" || err != nil {
		return "", false, nil
	}
	exp := time.UnixMilli(expMs)
	if !c.clk.Now().Before(exp) {
		return "", false, nil
	}
	c.remember(key, tok, exp)
	return tok, true, nil
}

// fetchLocked runs fetch while holding the lock and stores its token.
func (c *Cache) fetchLocked(ctx context.Context, key, owner string, fetch Fetch) (string, error) {
	const op = "wxtoken.fetch"
	defer func() {
		// Release even when the caller's ctx has ended, so the others need
		// not wait for the lock to expire.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := unlockScript.Run(uctx, c.rdb, []string{c.lockKey(key)}, owner).Err(); err != nil {
			c.log.Warn("wechat token lock not released", "key", key, "err", err)
		}
	}()
	// Another node may have stored a token between our read and our lock.
	if tok, ok, err := c.read(ctx, key); err != nil {
		return "", err
	} else if ok {
		return tok, nil
	}
	tok, expiresIn, err := fetch(ctx)
	if err != nil {
		return "", errs.Wrap(op, err)
	}
	if tok == "" || expiresIn <= 0 {
		return "", errs.E(op, errs.Unavailable, "token %s: provider returned an empty token or lifetime %s", key, expiresIn)
	}
	ttl := expiresIn - c.Margin
	if ttl < expiresIn/2 {
		ttl = expiresIn / 2
	}
	exp := c.clk.Now().Add(ttl)
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, c.Key(key), "token", tok, "exp", strconv.FormatInt(exp.UnixMilli(), 10))
		p.PExpire(ctx, c.Key(key), ttl)
		return nil
	})
	if err != nil {
		// The token is good; only sharing it failed. Use it here; other
		// nodes will fetch their own once the lock is gone.
		c.log.Warn("wechat token fetched but not stored", "key", key, "err", err)
	} else {
		c.log.Info("wechat token fetched", "key", key, "expires_in", expiresIn, "cached_for", ttl)
	}
	c.remember(key, tok, exp)
	return tok, nil
}

// remember memoises tok until exp, or MemoTTL from now if that is sooner.
func (c *Cache) remember(key, tok string, exp time.Time) {
	until := c.clk.Now().Add(c.MemoTTL)
	if exp.Before(until) {
		until = exp
	}
	c.mu.Lock()
	c.memo[key] = memo{token: tok, until: until}
	c.mu.Unlock()
}

// Invalidate drops key's token after the provider refused stale (WeChat
// 40001 / 42001 / 40014, WeCom 40014 / 42001): from this node's memory, and
// from Redis only if Redis still holds stale, so that when many nodes see
// the refusal the token is fetched again once. The next Token call gets
// the new token.
func (c *Cache) Invalidate(ctx context.Context, key, stale string) error {
	const op = "wxtoken.Invalidate"
	if stale == "" {
		return errs.E(op, errs.Invalid, "stale token is empty")
	}
	c.mu.Lock()
	if m, ok := c.memo[key]; ok && m.token == stale {
		delete(c.memo, key)
	}
	c.mu.Unlock()
	n, err := invalidateScript.Run(ctx, c.rdb, []string{c.Key(key)}, stale).Int()
	if err != nil {
		return c.redisErr(ctx, op, err)
	}
	if n == 1 {
		c.log.Info("wechat token invalidated", "key", key)
	}
	return nil
}

// redisErr classes a Redis failure: the caller's ctx ending stays what it
// is, anything else is Unavailable.
func (c *Cache) redisErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return errs.Wrap(op, ctx.Err())
	}
	return &errs.Error{Op: op, Code: errs.Unavailable, Msg: "redis", Err: err}
}
