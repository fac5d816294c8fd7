// Package realtime delivers events to WebSocket connections on any node.
// Each node keeps its own connections in a sharded Hub; which node holds a
// subscriber of a topic is recorded in Redis (presence), and an event is
// published only on the channels of the nodes that hold one (DESIGN D4) —
// targeted, not broadcast to every node.
package realtime

import (
	"hash/maphash"
	"sync"
)

// Conn is one client connection as the hub sees it. The transport adapter
// (the Fiber WebSocket handler) implements it with a bounded write queue:
// Send must never block; it reports false when the connection is too slow
// or closed, and the adapter then closes it.
type Conn interface {
	Send(payload []byte) bool
}

const shardCount = 64

// Hub indexes this node's connections by topic. It is sharded by topic so
// that fan-out to one topic never contends with another.
type Hub struct {
	seed   maphash.Seed
	shards [shardCount]shard
	// onFirst and onLast are told when a topic gains its first or loses its
	// last local subscriber (presence bookkeeping).
	onFirst, onLast func(key string)
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]map[Conn]struct{} // guarded by mu
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	h := &Hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].topics = map[string]map[Conn]struct{}{}
	}
	return h
}

func (h *Hub) shard(key string) *shard {
	return &h.shards[maphash.String(h.seed, key)%shardCount]
}

// Add subscribes c to key and reports whether it is the first local
// subscriber.
func (h *Hub) Add(key string, c Conn) bool {
	s := h.shard(key)
	s.mu.Lock()
	set, ok := s.topics[key]
	if !ok {
		set = map[Conn]struct{}{}
		s.topics[key] = set
	}
	set[c] = struct{}{}
	first := len(set) == 1
	s.mu.Unlock()
	if first && h.onFirst != nil {
		h.onFirst(key)
	}
	return first
}

// Remove unsubscribes c from key and reports whether it was the last local
// subscriber.
func (h *Hub) Remove(key string, c Conn) bool {
	s := h.shard(key)
	s.mu.Lock()
	set, ok := s.topics[key]
	last := false
	if ok {
		if _, had := set[c]; had {
			delete(set, c)
			if len(set) == 0 {
				delete(s.topics, key)
				last = true
			}
		}
	}
	s.mu.Unlock()
	if last && h.onLast != nil {
		h.onLast(key)
	}
	return last
}

// Deliver sends payload to every local subscriber of key and returns how
// many accepted it.
func (h *Hub) Deliver(key string, payload []byte) int { return h.deliver(key, payload, nil) }

// deliver is Deliver leaving out one connection (the origin of the event).
func (h *Hub) deliver(key string, payload []byte, except Conn) int {
	s := h.shard(key)
	s.mu.RLock()
	set := s.topics[key]
	conns := make([]Conn, 0, len(set))
	for c := range set {
		if c != except {
			conns = append(conns, c)
		}
	}
	s.mu.RUnlock()
	n := 0
	for _, c := range conns {
		if c.Send(payload) {
			n++
		}
	}
	return n
}

// Keys lists every key with a local subscriber (for presence refresh).
func (h *Hub) Keys() []string {
	var out []string
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for k := range s.topics {
			out = append(out, k)
		}
		s.mu.RUnlock()
	}
	return out
}

// Len is the number of local subscribers of key.
func (h *Hub) Len(key string) int {
	s := h.shard(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.topics[key])
}
