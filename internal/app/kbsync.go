package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/kb"
)

// kbSync keeps every node's compiled knowledge bases current (DESIGN D9): a
// write on any node publishes the tenant on one Redis channel, every node
// rebuilds that tenant's index, and a periodic revision check catches a
// message lost while a node was disconnected.
type kbSync struct {
	rdb *rdb.Client
	lib *kb.Library
	log *slog.Logger
}

func (k *kbSync) channel() string { return k.rdb.Prefix + ":kb:changed" }

// KBChanged implements kb.Publisher: this node rebuilds at once, the others
// when the message reaches them.
func (k *kbSync) KBChanged(ctx context.Context, tenantID string) {
	k.lib.Changed(tenantID)
	if err := k.rdb.Publish(ctx, k.channel(), tenantID).Err(); err != nil {
		k.log.Warn("publish kb change (the revision check will catch up)", "tenant", tenantID, "err", err)
	}
}

// run listens for changes and checks revisions every interval until ctx
// ends. The subscription is re-made after Redis errors.
func (k *kbSync) run(ctx context.Context, interval time.Duration) {
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := k.lib.Refresh(ctx); err != nil && ctx.Err() == nil {
					k.log.Warn("kb revision check", "err", err)
				}
			}
		}
	}()
	for ctx.Err() == nil {
		sub := k.rdb.Subscribe(ctx, k.channel())
		ch := sub.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	recv:
		for {
			select {
			case <-ctx.Done():
				break recv
			case msg, ok := <-ch:
				if !ok {
					break recv
				}
				k.lib.Changed(msg.Payload)
			}
		}
		_ = sub.Close()
		if ctx.Err() == nil {
			// Reconnected: anything published meanwhile is found by revision.
			if err := k.lib.Refresh(ctx); err != nil {
				k.log.Warn("kb revision check", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// kbMemory implements kb.Memory on Redis, so a customer's next message may
// reach any node.
type kbMemory struct{ rdb *rdb.Client }

func (m kbMemory) key(k string) string { return m.rdb.Prefix + ":" + k }

func (m kbMemory) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := m.rdb.Get(ctx, m.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (m kbMemory) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return m.rdb.Set(ctx, m.key(key), val, ttl).Err()
}

func (m kbMemory) Del(ctx context.Context, key string) error {
	return m.rdb.Del(ctx, m.key(key)).Err()
}
