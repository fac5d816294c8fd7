package realtime

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/internal/rdb"
)

// Presence timing: a node refreshes the presence of its topics every
// presenceRefresh; an entry not refreshed within presenceTTL belongs to a
// dead node and is ignored (and cleaned up) by publishers.
const (
	presenceRefresh = 10 * time.Second
	presenceTTL     = 30 * time.Second
	// presenceCacheTTL bounds how long a node trusts its cached copy of a
	// topic's presence. A node that gains a topic's first subscriber tells
	// every node to drop its copy at once (on the presence channel); the
	// TTL only covers a lost notice.
	presenceCacheTTL = 2 * time.Second
)

// Bus publishes events to the subscribers of a topic wherever they are
// connected. A topic is named within a tenant ("agent:<id>",
// "conv:<id>", "supervisors").
type Bus struct {
	rdb  *rdb.Client
	node string
	hub  *Hub
	log  *slog.Logger

	// OnDeliver, if set, observes every delivery made on this node (metrics).
	OnDeliver func(local bool)

	mu     sync.Mutex
	cancel context.CancelFunc // guarded by mu
	done   chan struct{}      // guarded by mu

	cacheMu sync.RWMutex
	cache   map[string]cachedNodes // hub key → nodes; guarded by cacheMu
}

type cachedNodes struct {
	nodes []string
	at    time.Time
}

// NewBus returns a bus for node over Redis. Start must be called before
// remote deliveries arrive.
func NewBus(c *rdb.Client, node string, log *slog.Logger) *Bus {
	b := &Bus{rdb: c, node: node, log: log, cache: map[string]cachedNodes{}}
	b.hub = NewHub()
	b.hub.onFirst = func(key string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.announce(ctx, []string{key})
		b.forget(key)
		// Other nodes may hold a cached presence without this node.
		if err := b.rdb.Publish(ctx, b.presenceChannel(), key).Err(); err != nil {
			b.log.Warn("presence notice failed", "err", err)
		}
	}
	b.hub.onLast = func(key string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.withdraw(ctx, key)
	}
	return b
}

// Node is this node's id.
func (b *Bus) Node() string { return b.node }

// Hub is this node's connection index.
func (b *Bus) Hub() *Hub { return b.hub }

// key joins tenant and topic into the hub key "tenant|topic".
func key(tenantID, topic string) string { return tenantID + "|" + topic }

func splitKey(k string) (tenantID, topic string) {
	tenantID, topic, _ = strings.Cut(k, "|")
	return
}

func (b *Bus) presenceKey(tenantID, topic string) string {
	return b.rdb.TenantKey(tenantID, "presence", topic)
}

func (b *Bus) nodeChannel(node string) string { return b.rdb.Prefix + ":node:" + node }

// presenceChannel carries "a topic gained a node" notices to every node.
func (b *Bus) presenceChannel() string { return b.rdb.Prefix + ":presence" }

// Subscribe registers c for a tenant's topic on this node.
func (b *Bus) Subscribe(tenantID, topic string, c Conn) { b.hub.Add(key(tenantID, topic), c) }

// Unsubscribe removes c from a tenant's topic on this node.
func (b *Bus) Unsubscribe(tenantID, topic string, c Conn) { b.hub.Remove(key(tenantID, topic), c) }

// Publish delivers payload to every subscriber of the topic: directly to
// this node's own subscribers, through the owning nodes' own channels
// elsewhere.
func (b *Bus) Publish(ctx context.Context, tenantID, topic string, payload []byte) error {
	k := key(tenantID, topic)
	origin, _ := ctx.Value(originKey{}).(Conn)
	if b.hub.deliver(k, payload, origin) > 0 && b.OnDeliver != nil {
		b.OnDeliver(true)
	}
	nodes, err := b.nodes(ctx, tenantID, topic)
	if err != nil {
		return err
	}
	var pipe redis.Pipeliner
	for _, n := range nodes {
		if n == b.node {
			continue
		}
		if pipe == nil {
			pipe = b.rdb.Pipeline()
		}
		var env bytes.Buffer
		env.Grow(len(k) + 1 + len(payload))
		env.WriteString(k)
		env.WriteByte('\n')
		env.Write(payload)
		pipe.Publish(ctx, b.nodeChannel(n), env.Bytes())
	}
	if pipe != nil {
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

type originKey struct{}

// WithOrigin marks ctx as carrying a request from connection c: events it
// causes are not echoed back to c, which already has its answer (the ack),
// while the same client's other connections still get them.
func WithOrigin(ctx context.Context, c Conn) context.Context {
	return context.WithValue(ctx, originKey{}, c)
}

// nodes lists the live nodes holding a subscriber of the topic, from the
// cache when fresh, else from Redis (removing entries of nodes that stopped
// refreshing).
func (b *Bus) nodes(ctx context.Context, tenantID, topic string) ([]string, error) {
	k := key(tenantID, topic)
	b.cacheMu.RLock()
	c, ok := b.cache[k]
	b.cacheMu.RUnlock()
	if ok && time.Since(c.at) < presenceCacheTTL {
		return c.nodes, nil
	}
	pk := b.presenceKey(tenantID, topic)
	m, err := b.rdb.HGetAll(ctx, pk).Result()
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	out := make([]string, 0, len(m))
	for node, exp := range m {
		ms, _ := strconv.ParseInt(exp, 10, 64)
		if ms < now {
			b.rdb.HDel(ctx, pk, node)
			continue
		}
		out = append(out, node)
	}
	b.cacheMu.Lock()
	if len(b.cache) > 200_000 {
		clear(b.cache)
	}
	b.cache[k] = cachedNodes{nodes: out, at: time.Now()}
	b.cacheMu.Unlock()
	return out, nil
}

func (b *Bus) forget(k string) {
	b.cacheMu.Lock()
	delete(b.cache, k)
	b.cacheMu.Unlock()
}

func (b *Bus) forgetAll() {
	b.cacheMu.Lock()
	clear(b.cache)
	b.cacheMu.Unlock()
}

func (b *Bus) announce(ctx context.Context, keys []string) {
	exp := strconv.FormatInt(time.Now().Add(presenceTTL).UnixMilli(), 10)
	pipe := b.rdb.Pipeline()
	for _, k := range keys {
		t, topic := splitKey(k)
		pk := b.presenceKey(t, topic)
		pipe.HSet(ctx, pk, b.node, exp)
		pipe.PExpire(ctx, pk, 2*presenceTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.log.Warn("presence announce failed", "err", err, "topics", len(keys))
	}
}

func (b *Bus) withdraw(ctx context.Context, k string) {
	t, topic := splitKey(k)
	if err := b.rdb.HDel(ctx, b.presenceKey(t, topic), b.node).Err(); err != nil {
		b.log.Warn("presence withdraw failed", "err", err, "topic", topic)
	}
}

// Start subscribes to this node's channel and keeps presence fresh until
// Stop. The subscription reconnects with backoff after Redis errors.
func (b *Bus) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan struct{})
	b.mu.Lock()
	b.cancel = cancel
	b.done = make(chan struct{})
	done := b.done
	b.mu.Unlock()
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); b.receiveForever(ctx, ready) }()
		go func() { defer wg.Done(); b.refreshForever(ctx) }()
		wg.Wait()
	}()
	select {
	case <-ready:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("realtime: subscribing to the node channel timed out")
	}
}

// Stop ends the subscription and withdraws this node's presence.
func (b *Bus) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, k := range b.hub.Keys() {
		b.withdraw(ctx, k)
	}
	return nil
}

func (b *Bus) receiveForever(ctx context.Context, ready chan struct{}) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		ps := b.rdb.Subscribe(ctx, b.nodeChannel(b.node), b.presenceChannel())
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("node channel subscribe failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		b.forgetAll() // notices may have been missed while unsubscribed
		if first {
			close(ready)
			first = false
		} else {
			// Presence may have been lost with Redis: announce again.
			b.announce(ctx, b.hub.Keys())
		}
		backoff = 100 * time.Millisecond
		ch := ps.Channel(redis.WithChannelSize(4096))
	loop:
		for {
			select {
			case <-ctx.Done():
				ps.Close()
				return
			case m, ok := <-ch:
				if !ok {
					break loop
				}
				if m.Channel == b.presenceChannel() {
					b.forget(m.Payload)
					continue
				}
				k, payload, found := strings.Cut(m.Payload, "\n")
				if !found {
					continue
				}
				b.hub.Deliver(k, []byte(payload))
				if b.OnDeliver != nil {
					b.OnDeliver(false)
				}
			}
		}
		ps.Close()
	}
}

func (b *Bus) refreshForever(ctx context.Context) {
	t := time.NewTicker(presenceRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if keys := b.hub.Keys(); len(keys) > 0 {
				b.announce(ctx, keys)
			}
		}
	}
}

// Subscribed reports whether any node holds a subscriber of the topic (an
// agent's console connected anywhere in the cluster). The answer may be up
// to the presence cache's age old.
func (b *Bus) Subscribed(ctx context.Context, tenantID, topic string) (bool, error) {
	if b.hub.Len(key(tenantID, topic)) > 0 {
		return true, nil
	}
	nodes, err := b.nodes(ctx, tenantID, topic)
	if err != nil {
		return false, err
	}
	for _, n := range nodes {
		if n != b.node {
			return true, nil
		}
	}
	return false, nil
}
