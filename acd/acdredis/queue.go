// Package acdredis keeps the live routing state of the ACD in Redis:
// waiting sessions per skill group, agents' capacity, load and skills, and
// which agents are available in each group under the group's strategy.
// Every change that must not race (enqueue, match, release, claim) is one
// Lua operation that also does the matching it triggers, so an event costs
// one round trip and any number of nodes can route the same tenant at once
// without giving a session or a unit of capacity twice. The operations
// make one Lua program, run as a Redis function library where the server
// has functions and as a script elsewhere (scripts.go, router.go); the
// same program runs on a real Redis and on the embedded miniredis.
package acdredis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/rdb"
)

var _ acd.Queue = (*Queue)(nil)

// Options tune a Queue.
type Options struct {
	// PipelineConns is how many connections carry batched script calls
	// (batch.go); 0 disables batching and every call is its own round trip.
	PipelineConns int
	// MatchLimit caps the assignments one enqueue's match makes (default 16).
	MatchLimit int
}

// DefaultOptions batch script calls over four connections.
var DefaultOptions = Options{PipelineConns: 4, MatchLimit: 16}

// Queue is the Redis implementation of acd.Queue. It holds no routing state
// of its own, so one Queue serves any number of goroutines and nodes share
// state only through Redis.
type Queue struct {
	c *rdb.Client
	r *router
	// Clock stamps enqueue times left zero, idle-since times, script "now"
	// and Waited; tests swap in a clock.Fake. Set it before use.
	Clock clock.Clock
	opts  Options
	b     *batcher
}

// New returns a Queue on c with DefaultOptions, on the wall clock.
func New(c *rdb.Client) *Queue { return NewWithOptions(c, DefaultOptions) }

// NewWithOptions returns a Queue on c tuned by opts.
func NewWithOptions(c *rdb.Client, opts Options) *Queue {
	if opts.MatchLimit <= 0 {
		opts.MatchLimit = 16
	}
	q := &Queue{c: c, r: &router{c: c.UniversalClient}, Clock: clock.Real{}, opts: opts}
	if opts.PipelineConns > 0 {
		q.b = newBatcher(q.r, opts.PipelineConns)
	}
	return q
}

// Close stops the batching loops; calls after Close fail.
func (q *Queue) Close() {
	if q.b != nil {
		q.b.close()
	}
}

// run runs one routing operation (scripts.go) for a tenant at now and
// returns its reply; batched, it shares a program call with others.
func (q *Queue) run(ctx context.Context, o operation, tenantID string, now time.Time, args ...any) (any, error) {
	p := q.tenantPrefix(tenantID)
	if q.b != nil {
		return q.b.run(p, o, now.UnixMicro(), args)
	}
	c := []*call{{prefix: p, op: o, now: now.UnixMicro(), args: args}}
	keys, argv := dispatchArgs(c)
	res, err := q.r.run(ctx, keys, argv)
	split(c, res, err)
	return c[0].res, c[0].err
}

// Configure implements acd.Queue.
func (q *Queue) Configure(ctx context.Context, g acd.Group) error {
	const op = "acdredis.Configure"
	if err := checkTenant(op, g.TenantID); err != nil {
		return err
	}
	if err := checkID(op, "group", g.ID); err != nil {
		return err
	}
	strategy, fallback := g.Strategy, g.Fallback
	if strategy == "" {
		strategy = acd.LongestIdle
	}
	if fallback == "" || fallback == acd.Sticky {
		fallback = acd.LongestIdle
	}
	if !strategy.Valid() || !fallback.Valid() {
		return errs.E(op, errs.Invalid, "group %s: unknown strategy %q or fallback %q", g.ID, g.Strategy, g.Fallback)
	}
	sl := g.SLThreshold
	if sl <= 0 {
		sl = 20 * time.Second
	}
	weight := g.Weight
	if weight <= 0 || math.IsNaN(weight) || math.IsInf(weight, 0) {
		weight = 1
	}
	step := g.PriorityStep
	if step == 0 {
		step = time.Minute
	}
	if step < 0 || step.Milliseconds() > maxStepMs {
		return errs.E(op, errs.Invalid, "group %s: priority step %s outside 0..24h", g.ID, step)
	}
	ring := g.RingStep
	if ring <= 0 {
		ring = 15 * time.Second
	}
	_, err := q.run(ctx, opConfigure, g.TenantID, q.Clock.Now(), g.ID,
		"strategy", string(strategy), "fallback", string(fallback),
		"sl", sl.Milliseconds(), "weight", strconv.FormatFloat(weight, 'g', -1, 64),
		"step", step.Milliseconds(), "sticky", max(g.StickyWait, 0).Milliseconds(),
		"ring", ring.Milliseconds(), "maxq", max(g.MaxQueue, 0))
	if err != nil {
		return redisErr(op, fmt.Errorf("configure group %s: %w", g.ID, err))
	}
	return nil
}

// Enqueue implements acd.Queue. An item already waiting keeps its rank, so
// a retried handoff cannot reorder the queue. A zero EnqueuedAt means now;
// a session handed back to the queue passes its original time and so
// returns near the head. The match that follows is part of the same
// script: with an agent available, enqueue→assign is one round trip.
func (q *Queue) Enqueue(ctx context.Context, it acd.Item) (acd.Enqueued, error) {
	const op = "acdredis.Enqueue"
	if err := checkTenant(op, it.TenantID); err != nil {
		return acd.Enqueued{}, err
	}
	if err := checkID(op, "group", it.GroupID); err != nil {
		return acd.Enqueued{}, err
	}
	if err := checkID(op, "session", it.SessionID); err != nil {
		return acd.Enqueued{}, err
	}
	if it.PreferredAgent != "" {
		if err := checkID(op, "preferred agent", it.PreferredAgent); err != nil {
			return acd.Enqueued{}, err
		}
	}
	if it.Priority > MaxPriority || it.Priority < -MaxPriority {
		return acd.Enqueued{}, errs.E(op, errs.Invalid, "priority %d outside ±%d", it.Priority, MaxPriority)
	}
	cost := it.Cost
	if cost == 0 {
		cost = 1
	}
	if cost < 0 || cost > 1000 {
		return acd.Enqueued{}, errs.E(op, errs.Invalid, "cost %d outside 1..1000", it.Cost)
	}
	now := q.Clock.Now()
	at := it.EnqueuedAt
	if at.IsZero() {
		at = now
	}
	ms := at.UnixMilli()
	if ms < 0 || ms > maxEnqueueMs {
		return acd.Enqueued{}, errs.E(op, errs.Invalid, "enqueued at %s outside 1970..2286", at)
	}
	force := ""
	if it.Force {
		force = "1"
	}
	res, err := q.run(ctx, opEnqueue, it.TenantID, now, it.GroupID, it.SessionID, ms,
		it.Priority, cost, it.PreferredAgent, force, q.opts.MatchLimit)
	if err != nil {
		return acd.Enqueued{}, redisErr(op, fmt.Errorf("enqueue session %s in group %s: %w", it.SessionID, it.GroupID, err))
	}
	r, err := parseReply(res)
	if err != nil {
		return acd.Enqueued{}, errs.Wrap(op, err)
	}
	return acd.Enqueued{
		Added: r.code == codeAdded, Full: r.code == codeFull,
		Position: int(r.a), Length: int(r.b),
		Assignments: assignments(it.TenantID, now, r.matches),
	}, nil
}

// Remove implements acd.Queue; it reports whether the item was waiting, so
// that a caller racing a match can tell who won.
func (q *Queue) Remove(ctx context.Context, tenantID, groupID, sessionID string) (bool, error) {
	const op = "acdredis.Remove"
	if err := checkItem(op, tenantID, groupID, sessionID); err != nil {
		return false, err
	}
	res, err := q.run(ctx, opRemove, tenantID, q.Clock.Now(), groupID, sessionID)
	if err != nil {
		return false, redisErr(op, fmt.Errorf("remove session %s from group %s: %w", sessionID, groupID, err))
	}
	n, _ := res.(int64)
	return n == 1, nil
}

// Position is the 1-based place of a session (ZRANK) and the queue length,
// read in one MULTI so the two agree.
func (q *Queue) Position(ctx context.Context, tenantID, groupID, sessionID string) (int, int, error) {
	const op = "acdredis.Position"
	if err := checkItem(op, tenantID, groupID, sessionID); err != nil {
		return 0, 0, err
	}
	key := groupKey(q.tenantPrefix(tenantID), groupID, "wait")
	pipe := q.c.TxPipeline()
	rank := pipe.ZRank(ctx, key, sessionID)
	card := pipe.ZCard(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, redisErr(op, fmt.Errorf("position of session %s in group %s: %w", sessionID, groupID, err))
	}
	length := int(card.Val())
	r, err := rank.Result()
	if errors.Is(err, redis.Nil) {
		return 0, length, nil
	}
	if err != nil {
		return 0, 0, redisErr(op, fmt.Errorf("position of session %s in group %s: %w", sessionID, groupID, err))
	}
	return int(r) + 1, length, nil
}

// Length is the number of waiting sessions in a group.
func (q *Queue) Length(ctx context.Context, tenantID, groupID string) (int, error) {
	const op = "acdredis.Length"
	if err := checkTenant(op, tenantID); err != nil {
		return 0, err
	}
	if err := checkID(op, "group", groupID); err != nil {
		return 0, err
	}
	n, err := q.c.ZCard(ctx, groupKey(q.tenantPrefix(tenantID), groupID, "wait")).Result()
	if err != nil {
		return 0, redisErr(op, fmt.Errorf("length of group %s: %w", groupID, err))
	}
	return int(n), nil
}

// Waiting implements acd.Queue.
func (q *Queue) Waiting(ctx context.Context, tenantID, groupID string, limit int) ([]string, error) {
	const op = "acdredis.Waiting"
	if err := checkTenant(op, tenantID); err != nil {
		return nil, err
	}
	if err := checkID(op, "group", groupID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	ids, err := q.c.ZRange(ctx, groupKey(q.tenantPrefix(tenantID), groupID, "wait"), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, redisErr(op, fmt.Errorf("waiting of group %s: %w", groupID, err))
	}
	return ids, nil
}

// AgentReady stores the agent's capacity, load and skills, marks them
// ready and available in each group (ordered by each group's strategy;
// IdleSince, now when zero, orders longest_idle), forgets groups they no
// longer serve, and gives them the sessions they can take — in one
// script. An agent at capacity is ready but not available until a Release.
func (q *Queue) AgentReady(ctx context.Context, a acd.Agent) ([]acd.Assignment, error) {
	const op = "acdredis.AgentReady"
	if err := checkTenant(op, a.TenantID); err != nil {
		return nil, err
	}
	if err := checkID(op, "agent", a.ID); err != nil {
		return nil, err
	}
	if a.MaxSessions < 0 || a.Load < 0 {
		return nil, errs.E(op, errs.Invalid, "agent %s: max sessions %d and load %d must not be negative", a.ID, a.MaxSessions, a.Load)
	}
	now := q.Clock.Now()
	idle := a.IdleSince
	if idle.IsZero() {
		idle = now
	}
	if us := idle.UnixMicro(); us < 0 || us > 1<<53-1 {
		return nil, errs.E(op, errs.Invalid, "agent %s: idle since %s outside 1970..2255", a.ID, idle)
	}
	args := []any{a.ID, a.MaxSessions, a.Load, idle.UnixMicro()}
	seen := make(map[string]bool, len(a.Groups))
	for _, g := range a.Groups {
		if err := checkID(op, "group", g); err != nil {
			return nil, err
		}
		if seen[g] {
			continue
		}
		seen[g] = true
		prof, weight := 3, 1
		if p, ok := a.Proficiency[g]; ok {
			prof = min(max(p, 1), 5)
		}
		if w, ok := a.Weight[g]; ok {
			weight = min(max(w, 1), 100)
		}
		args = append(args, g, prof, weight)
	}
	return q.agentScript(ctx, op, opAgentReady, a.TenantID, a.ID, now, args...)
}

// AgentNotReady takes the agent out of every group's available set and
// clears their ready flag; their load stays. An agent routing does not
// know is already out of routing, so that is not an error.
func (q *Queue) AgentNotReady(ctx context.Context, tenantID, agentID string) error {
	return q.notReady(ctx, "acdredis.AgentNotReady", tenantID, agentID, "0")
}

// AgentOffline implements acd.Queue.
func (q *Queue) AgentOffline(ctx context.Context, tenantID, agentID string) error {
	return q.notReady(ctx, "acdredis.AgentOffline", tenantID, agentID, "1")
}

func (q *Queue) notReady(ctx context.Context, op, tenantID, agentID, offline string) error {
	if err := checkTenant(op, tenantID); err != nil {
		return err
	}
	if err := checkID(op, "agent", agentID); err != nil {
		return err
	}
	if _, err := q.run(ctx, opAgentNotReady, tenantID, q.Clock.Now(), agentID, offline); err != nil {
		return redisErr(op, fmt.Errorf("agent %s: %w", agentID, err))
	}
	return nil
}

// Release implements acd.Queue. It returns ErrUnknownAgent for an agent
// routing holds no state for, which means the routing state drifted from
// the database and the agent needs AgentReady again.
func (q *Queue) Release(ctx context.Context, tenantID, agentID string, cost int) ([]acd.Assignment, error) {
	const op = "acdredis.Release"
	if cost <= 0 {
		cost = 1
	}
	return q.agentScript(ctx, op, opRelease, tenantID, agentID, q.Clock.Now(), agentID, cost, "")
}

// MatchAgent gives the agent the sessions held for them, then the most
// urgent waiting sessions across their groups, up to their spare capacity,
// in one script. An agent who is not ready, full or unknown gets nothing;
// that is not an error, since matching is triggered by events that may
// race a state change.
func (q *Queue) MatchAgent(ctx context.Context, tenantID, agentID string) ([]acd.Assignment, error) {
	as, err := q.agentScript(ctx, "acdredis.MatchAgent", opMatchAgent, tenantID, agentID, q.Clock.Now(), agentID)
	if errors.Is(err, ErrUnknownAgent) {
		return nil, nil
	}
	return as, err
}

// agentScript runs a script with the {code, a, b, assignments...} reply
// for one agent.
func (q *Queue) agentScript(ctx context.Context, op string, o operation, tenantID, agentID string, now time.Time, args ...any) ([]acd.Assignment, error) {
	if err := checkTenant(op, tenantID); err != nil {
		return nil, err
	}
	if err := checkID(op, "agent", agentID); err != nil {
		return nil, err
	}
	res, err := q.run(ctx, o, tenantID, now, args...)
	if err != nil {
		return nil, redisErr(op, fmt.Errorf("agent %s: %w", agentID, err))
	}
	r, err := parseReply(res)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	as := assignments(tenantID, now, r.matches)
	if r.code == codeUnknownAgent {
		return as, ErrUnknownAgent
	}
	return as, nil
}

// Claim implements acd.Queue.
func (q *Queue) Claim(ctx context.Context, tenantID, agentID string, cost int) (bool, error) {
	const op = "acdredis.Claim"
	if err := checkTenant(op, tenantID); err != nil {
		return false, err
	}
	if err := checkID(op, "agent", agentID); err != nil {
		return false, err
	}
	if cost <= 0 {
		cost = 1
	}
	res, err := q.run(ctx, opClaim, tenantID, q.Clock.Now(), agentID, cost)
	if err != nil {
		return false, redisErr(op, fmt.Errorf("claim agent %s: %w", agentID, err))
	}
	n, _ := res.(int64)
	return n == 1, nil // 3 (unknown) means not in routing: not ready
}

// Missed implements acd.Queue.
func (q *Queue) Missed(ctx context.Context, tenantID, agentID string, limit int) (int, bool, error) {
	n, made, err := q.missed(ctx, "acdredis.Missed", tenantID, agentID, limit, "")
	return n, made, err
}

// Accepted implements acd.Queue.
func (q *Queue) Accepted(ctx context.Context, tenantID, agentID string) error {
	_, _, err := q.missed(ctx, "acdredis.Accepted", tenantID, agentID, 0, "1")
	return err
}

func (q *Queue) missed(ctx context.Context, op, tenantID, agentID string, limit int, reset string) (int, bool, error) {
	if err := checkTenant(op, tenantID); err != nil {
		return 0, false, err
	}
	if err := checkID(op, "agent", agentID); err != nil {
		return 0, false, err
	}
	res, err := q.run(ctx, opMissed, tenantID, q.Clock.Now(), agentID, max(limit, 0), reset)
	if err != nil {
		return 0, false, redisErr(op, fmt.Errorf("agent %s: %w", agentID, err))
	}
	arr, ok := res.([]any)
	if !ok || len(arr) != 2 {
		return 0, false, errs.E(op, errs.Internal, "unexpected reply %#v", res)
	}
	n, _ := arr[0].(int64)
	made, _ := arr[1].(int64)
	if n < 0 {
		return 0, false, nil // unknown to routing: nothing to count
	}
	return int(n), made == 1, nil
}

// AgentLoad implements acd.Queue.
func (q *Queue) AgentLoad(ctx context.Context, tenantID, agentID string) (acd.AgentLoad, error) {
	const op = "acdredis.AgentLoad"
	if err := checkTenant(op, tenantID); err != nil {
		return acd.AgentLoad{}, err
	}
	if err := checkID(op, "agent", agentID); err != nil {
		return acd.AgentLoad{}, err
	}
	v, err := q.c.HMGet(ctx, q.tenantPrefix(tenantID)+":agent:"+agentID, "ready", "load", "max").Result()
	if err != nil {
		return acd.AgentLoad{}, redisErr(op, fmt.Errorf("agent %s: %w", agentID, err))
	}
	if v[2] == nil {
		return acd.AgentLoad{}, nil
	}
	str := func(x any) string { s, _ := x.(string); return s }
	load, _ := strconv.Atoi(str(v[1]))
	maxS, _ := strconv.Atoi(str(v[2]))
	return acd.AgentLoad{Known: true, Ready: str(v[0]) == "1", Load: load, Max: maxS}, nil
}

// SetLoad implements acd.Queue: it sets the load and places the agent
// again under each group's strategy in one script, matching nothing (the
// caller matches afterwards and delivers). An agent routing has no state
// for is left alone (AgentReady will set the load).
func (q *Queue) SetLoad(ctx context.Context, tenantID, agentID string, load int) error {
	_, err := q.agentScript(ctx, "acdredis.SetLoad", opRelease, tenantID, agentID, q.Clock.Now(), agentID, 0, max(load, 0))
	if errors.Is(err, ErrUnknownAgent) {
		return nil
	}
	return err
}

// MatchGroup hands the group's best waiting sessions to the agents its
// strategy picks, at most limit of them, in one script.
func (q *Queue) MatchGroup(ctx context.Context, tenantID, groupID string, limit int) ([]acd.Assignment, error) {
	const op = "acdredis.MatchGroup"
	if err := checkTenant(op, tenantID); err != nil {
		return nil, err
	}
	if err := checkID(op, "group", groupID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	now := q.Clock.Now()
	res, err := q.run(ctx, opMatchGroup, tenantID, now, groupID, limit)
	if err != nil {
		return nil, redisErr(op, fmt.Errorf("match group %s: %w", groupID, err))
	}
	r, err := parseReply(res)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	return assignments(tenantID, now, r.matches), nil
}

// Stats implements acd.Queue.
func (q *Queue) Stats(ctx context.Context, tenantID string, groupIDs []string) ([]acd.GroupStats, error) {
	const op = "acdredis.Stats"
	if err := checkTenant(op, tenantID); err != nil {
		return nil, err
	}
	if len(groupIDs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(groupIDs))
	for _, g := range groupIDs {
		if err := checkID(op, "group", g); err != nil {
			return nil, err
		}
		args = append(args, g)
	}
	now := q.Clock.Now()
	res, err := q.run(ctx, opStats, tenantID, now, args...)
	if err != nil {
		return nil, redisErr(op, fmt.Errorf("stats: %w", err))
	}
	arr, ok := res.([]any)
	if !ok || len(arr) != 5*len(groupIDs) {
		return nil, errs.E(op, errs.Internal, "unexpected reply %#v", res)
	}
	// The rate's window: four whole minutes and the current one so far.
	window := 4*time.Minute + time.Duration(now.UnixMilli()%60000)*time.Millisecond
	out := make([]acd.GroupStats, len(groupIDs))
	for i, g := range groupIDs {
		f := arr[5*i : 5*i+5]
		num := func(x any) int { n, _ := x.(int64); return int(n) }
		s := acd.GroupStats{GroupID: g, Waiting: num(f[0]), Online: num(f[2]), Available: num(f[3])}
		if ms, err := strconv.ParseInt(fmt.Sprint(f[1]), 10, 64); err == nil && s.Waiting > 0 {
			s.OldestSince = time.UnixMilli(ms).UTC()
			s.LongestWait = max(now.Sub(s.OldestSince), 0)
		}
		s.ServiceRate = float64(num(f[4])) / window.Seconds()
		out[i] = s
	}
	return out, nil
}

// Built implements acd.Queue.
func (q *Queue) Built(ctx context.Context, tenantID string) (bool, error) {
	if err := checkTenant("acdredis.Built", tenantID); err != nil {
		return false, err
	}
	n, err := q.c.Exists(ctx, builtKey(q.tenantPrefix(tenantID))).Result()
	if err != nil {
		return false, redisErr("acdredis.Built", err)
	}
	return n == 1, nil
}

// MarkBuilt implements acd.Queue.
func (q *Queue) MarkBuilt(ctx context.Context, tenantID string) error {
	if err := checkTenant("acdredis.MarkBuilt", tenantID); err != nil {
		return err
	}
	if err := q.c.Set(ctx, builtKey(q.tenantPrefix(tenantID)), q.Clock.Now().UnixMilli(), 0).Err(); err != nil {
		return redisErr("acdredis.MarkBuilt", err)
	}
	return nil
}

// Reset deletes every key of the tenant under the prefix, before a rebuild
// from the database. It walks the keyspace with SCAN, so it is not atomic:
// routing of the tenant must be paused while it runs.
func (q *Queue) Reset(ctx context.Context, tenantID string) error {
	const op = "acdredis.Reset"
	if err := checkTenant(op, tenantID); err != nil {
		return err
	}
	iter := q.c.Scan(ctx, 0, pattern(q.tenantPrefix(tenantID)), 1000).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := q.c.Del(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return redisErr(op, fmt.Errorf("reset tenant %s: %w", tenantID, err))
			}
		}
	}
	if err := iter.Err(); err != nil {
		return redisErr(op, fmt.Errorf("reset tenant %s: %w", tenantID, err))
	}
	if err := flush(); err != nil {
		return redisErr(op, fmt.Errorf("reset tenant %s: %w", tenantID, err))
	}
	return nil
}

// assignments converts script matches; Waited counts from the enqueue time
// to the script's now.
func assignments(tenantID string, now time.Time, ms []scriptMatch) []acd.Assignment {
	if len(ms) == 0 {
		return nil
	}
	out := make([]acd.Assignment, len(ms))
	for i, m := range ms {
		var waited time.Duration
		if at, err := strconv.ParseInt(m.enqueuedMs, 10, 64); err == nil {
			waited = max(now.Sub(time.UnixMilli(at)), 0)
		}
		out[i] = acd.Assignment{TenantID: tenantID, SessionID: m.session, GroupID: m.group,
			AgentID: m.agent, Cost: int(m.cost), Waited: waited}
	}
	return out
}

func checkTenant(op, tenantID string) error {
	if tenantID == "" {
		return errs.E(op, errs.Invalid, "tenant id is empty")
	}
	// The tenant is the Redis Cluster hash tag; a brace would end it early.
	if strings.ContainsAny(tenantID, "{}") {
		return errs.E(op, errs.Invalid, "tenant id %q contains a brace", tenantID)
	}
	return nil
}

// checkID refuses ids the key layout and the scripts' separators cannot
// carry: ':' (key parts), ',' (an agent's group list), '|' and tab (item
// metadata).
func checkID(op, what, id string) error {
	if id == "" {
		return errs.E(op, errs.Invalid, "%s id is empty", what)
	}
	if strings.ContainsAny(id, ":,|\t{}") {
		return errs.E(op, errs.Invalid, "%s id %q contains one of : , | { } or a tab", what, id)
	}
	return nil
}

func checkItem(op, tenantID, groupID, sessionID string) error {
	if err := checkTenant(op, tenantID); err != nil {
		return err
	}
	if err := checkID(op, "group", groupID); err != nil {
		return err
	}
	return checkID(op, "session", sessionID)
}

// ErrUnknownAgent reports an agent that routing holds no state for: never
// made ready since the last Reset, or lost with Redis. It carries
// errs.NotFound, so callers can tell it from a failure and rebuild the
// agent's state with AgentReady.
var ErrUnknownAgent = &errs.Error{Op: "acdredis", Code: errs.NotFound, Msg: "agent unknown to routing"}

// redisErr classes a failed Redis call: an error reply (a script that
// failed, a wrong key type) is a bug, anything else means the store is
// down or overloaded and the caller may retry.
func redisErr(op string, err error) error {
	code := errs.Unavailable
	var reply redis.Error
	if errors.As(err, &reply) {
		code = errs.Internal
	}
	return &errs.Error{Op: op, Code: code, Err: err}
}

func redisErrOrNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return redisErr(op, err)
}
