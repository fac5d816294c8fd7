package acdredis

import (
	"strconv"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/rdb"
)

// Every Redis key the queue touches is built here and nowhere else, and
// handed to the scripts through KEYS. All keys of a tenant share the hash
// tag {tenant} (rdb.TenantKey), so a script that touches several of them
// stays in one Redis Cluster slot.
//
//	<p>:{t}:q:<group>:waiting   ZSET  session -> score (see score)
//	<p>:{t}:q:<group>:enqueued  HASH  session -> enqueued at, unix ms
//	<p>:{t}:q:<group>:agents    ZSET  agent   -> idle since, unix µs
//	<p>:{t}:agent:<agent>       HASH  max, load, ready ("1"/"0"), groups (csv)
//
// The suffixes "waiting", "enqueued" and "agents" are none a suffix of
// another, so no group id can make one group's key equal another's.
type keys struct {
	prefix string
	tenant string
}

func (q *Queue) keys(tenantID string) keys {
	return keys{prefix: q.c.Prefix, tenant: tenantID}
}

// waiting is the group's line of sessions, best first.
func (k keys) waiting(group string) string {
	return rdb.TenantKey(k.prefix, k.tenant, "q", group, "waiting")
}

// enqueued holds the enqueue time of each waiting session, for Waited.
func (k keys) enqueued(group string) string {
	return rdb.TenantKey(k.prefix, k.tenant, "q", group, "enqueued")
}

// available holds the agents of a group who may take a session, longest
// idle first. It may hold agents who have since become full or not ready;
// match_group.lua drops them when it meets them.
func (k keys) available(group string) string {
	return rdb.TenantKey(k.prefix, k.tenant, "q", group, "agents")
}

// agent is an agent's capacity, load, ready flag and groups.
func (k keys) agent(id string) string {
	return rdb.TenantKey(k.prefix, k.tenant, "agent", id)
}

// pattern matches every key of the tenant, for Reset. The fixed part is
// escaped so that a prefix or tenant id with glob characters matches only
// itself.
func (k keys) pattern() string {
	return escapeGlob(rdb.TenantKey(k.prefix, k.tenant)) + ":*"
}

func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Score encoding of the waiting ZSET: score = -priority*1e13 + enqueuedAtMs.
//
// Lower scores are served first, so a higher priority always wins and equal
// priorities are served by earliest enqueue time. Unix ms stay below 1e13
// until the year 2286, so the time never spills into the priority part.
// Scores are integers; float64 holds every integer up to 2^53 ≈ 9.007e15
// exactly, and |priority| <= MaxPriority (800) keeps |score| below
// 8.01e15. Go computes the score and passes it as a decimal string, so Lua
// never does arithmetic on it (Lua would format a number back with limited
// digits).
const (
	scorePriorityStep = 10_000_000_000_000 // 1e13: room for unix ms below it
	maxEnqueueMs      = scorePriorityStep - 1
)

// Score of the available ZSET: the agent's idle-since time in unix µs,
// lowest first = idle longest. A matched agent moves to the tail at now or,
// if the tail is not older, one µs after it: with equal scores Redis would
// order by agent id and the same agent would win every burst (one
// MatchGroup run gives all its assignments the same now). Microseconds are
// exact in float64 until 2255 and make that nudge negligible against real
// time; milliseconds would drift the tail ahead of the clock at a mere 1000
// matches per second in one group.
const maxIdleMicros = 1<<53 - 1

// MaxPriority bounds Item.Priority (and -MaxPriority from below) so that
// the waiting score stays an exact float64; see the score encoding above.
const MaxPriority = 800

// score is the waiting-ZSET score of an item.
func score(priority int, enqueuedMs int64) string {
	return strconv.FormatInt(-int64(priority)*scorePriorityStep+enqueuedMs, 10)
}

// enqueuedFromScore recovers the enqueue time from a score; it is the
// fallback when the enqueue-time hash lacks a session.
func enqueuedFromScore(s string) (int64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	ms := int64(f) % scorePriorityStep
	if ms < 0 {
		ms += scorePriorityStep
	}
	return ms, true
}
