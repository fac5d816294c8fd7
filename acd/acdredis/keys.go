package acdredis

import (
	"strings"

	"github.com/switchboard-acd/switchboard/internal/rdb"
)

// Every key of a tenant starts with the tenant prefix "<prefix>:{tenant}"
// (rdb.TenantKey); lua/lib.lua lists the keys the scripts build from it.
// The hash tag {tenant} puts all of a tenant's keys in one Redis Cluster
// slot, so a script may touch any of them (DESIGN D5). Group and agent ids
// carry no ':' (agents.validateID), so no id can make one key equal
// another.

// tenantPrefix is the prefix of every routing key of a tenant.
func (q *Queue) tenantPrefix(tenantID string) string {
	return rdb.TenantKey(q.c.Prefix, tenantID)
}

// builtKey marks a tenant whose routing state was built from the
// database; its absence means Redis lost the state. Scripts get it as
// KEYS[1] to name the tenant's slot.
func builtKey(prefix string) string { return prefix + ":built" }

func groupKey(prefix, group, kind string) string { return prefix + ":q:" + group + ":" + kind }

// pattern matches every key of the tenant, for Reset. The fixed part is
// escaped so that a prefix or tenant id with glob characters matches only
// itself.
func pattern(prefix string) string { return escapeGlob(prefix) + ":*" }

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

// MaxPriority bounds Item.Priority (and -MaxPriority from below): with a
// priority step of at most a day, the rank (enqueued ms - priority * step)
// stays an exact integer in a float64.
const MaxPriority = 800

// maxStep bounds Group.PriorityStep for the same reason.
const maxStepMs = 86_400_000

// maxEnqueueMs keeps enqueue times below 1e13 ms (the year 2286), which
// lua/lib.lua relies on when it bands scores.
const maxEnqueueMs = 10_000_000_000_000 - 1
