// Package acdredis keeps the live routing state of the ACD in Redis:
// waiting sessions per skill group, agents' capacity and load, and which
// agents are available in each group. Every change that must not race
// (enqueue, match, release) is one Lua script, so any number of nodes can
// route the same tenant at once without giving a session or a unit of
// capacity twice. The same scripts run on a real Redis and on the embedded
// miniredis.
package acdredis

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Tuning of the retry loops around scripts whose KEYS depend on state read
// just before (an agent's groups, a group's first available agents).
const (
	// maxGroupsRetries bounds retries when an agent's groups change between
	// reading them and running the script; a change is a rare admin action,
	// so hitting the bound means something rewrites them in a loop.
	maxGroupsRetries = 8
	// candidateSlack is how many agents beyond the assignments still wanted
	// MatchGroup passes as candidates, so that a few full or not-ready agents
	// at the head of the available set cost no extra round trip.
	candidateSlack = 16
	// maxCandidates caps the candidates (and so the KEYS) of one script run.
	maxCandidates = 4096
	// maxIdleRounds bounds the MatchGroup rounds in a row that assign
	// nothing; each such round doubles the candidates, so the bound is only
	// reached when other nodes keep reordering the available set, and they
	// are then matching the group themselves.
	maxIdleRounds = 16
)

// Queue is the Redis implementation of acd.Queue. It holds no state of its
// own besides the client, so one Queue serves any number of goroutines and
// nodes share state only through Redis.
type Queue struct {
	c *rdb.Client
	// Clock stamps enqueue times left zero, idle-since scores and Waited;
	// tests swap in a clock.Fake. Set it before the Queue is used.
	Clock clock.Clock
}

// New returns a Queue on c, keyed under c.Prefix, on the wall clock.
func New(c *rdb.Client) *Queue {
	return &Queue{c: c, Clock: clock.Real{}}
}

// Enqueue adds a waiting session. An item already waiting keeps its
// priority and time (ZADD NX), so a retried handoff cannot reorder the
// queue. A zero EnqueuedAt means now; a session handed back to the queue
// passes its original time and so returns near the head.
func (q *Queue) Enqueue(ctx context.Context, it acd.Item) error {
	const op = "acdredis.Enqueue"
	if err := checkTenant(op, it.TenantID); err != nil {
		return err
	}
	if err := checkGroup(op, it.GroupID); err != nil {
		return err
	}
	if it.SessionID == "" {
		return errs.E(op, errs.Invalid, "session id is empty")
	}
	if it.Priority > MaxPriority || it.Priority < -MaxPriority {
		return errs.E(op, errs.Invalid, "priority %d outside ±%d", it.Priority, MaxPriority)
	}
	at := it.EnqueuedAt
	if at.IsZero() {
		at = q.Clock.Now()
	}
	ms := at.UnixMilli()
	if ms < 0 || ms > maxEnqueueMs {
		return errs.E(op, errs.Invalid, "enqueued at %s outside 1970..2286", at)
	}
	k := q.keys(it.TenantID)
	err := scriptEnqueue.Run(ctx, q.c,
		[]string{k.waiting(it.GroupID), k.enqueued(it.GroupID)},
		it.SessionID, score(it.Priority, ms), ms).Err()
	if err != nil {
		return redisErr(op, fmt.Errorf("enqueue session %s in group %s: %w", it.SessionID, it.GroupID, err))
	}
	return nil
}

// Remove takes a session out of its group's queue and reports whether it
// was waiting, so that a caller racing a match can tell who won.
func (q *Queue) Remove(ctx context.Context, tenantID, groupID, sessionID string) (bool, error) {
	const op = "acdredis.Remove"
	if sessionID == "" {
		return false, errs.E(op, errs.Invalid, "session id is empty")
	}
	if err := checkTenant(op, tenantID); err != nil {
		return false, err
	}
	if err := checkGroup(op, groupID); err != nil {
		return false, err
	}
	k := q.keys(tenantID)
	n, err := scriptRemove.Run(ctx, q.c,
		[]string{k.waiting(groupID), k.enqueued(groupID)}, sessionID).Int64()
	if err != nil {
		return false, redisErr(op, fmt.Errorf("remove session %s from group %s: %w", sessionID, groupID, err))
	}
	return n == 1, nil
}

// Position is the 1-based place of a session (ZRANK) and the queue length,
// read in one MULTI so the two agree.
func (q *Queue) Position(ctx context.Context, tenantID, groupID, sessionID string) (int, int, error) {
	const op = "acdredis.Position"
	if sessionID == "" {
		return 0, 0, errs.E(op, errs.Invalid, "session id is empty")
	}
	if err := checkTenant(op, tenantID); err != nil {
		return 0, 0, err
	}
	if err := checkGroup(op, groupID); err != nil {
		return 0, 0, err
	}
	key := q.keys(tenantID).waiting(groupID)
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
	if err := checkGroup(op, groupID); err != nil {
		return 0, err
	}
	n, err := q.c.ZCard(ctx, q.keys(tenantID).waiting(groupID)).Result()
	if err != nil {
		return 0, redisErr(op, fmt.Errorf("length of group %s: %w", groupID, err))
	}
	return int(n), nil
}

// AgentReady stores the agent's capacity, load and groups, marks them
// ready and puts them in each group's available set scored by IdleSince
// (now when zero). The given IdleSince replaces any score the agent had:
// the caller knows when the agent became idle, and a rebuild from the
// database must be able to set it. Groups the agent no longer serves drop
// them. An agent already at capacity is ready but not available until a
// Release.
func (q *Queue) AgentReady(ctx context.Context, a acd.Agent) error {
	const op = "acdredis.AgentReady"
	if err := checkTenant(op, a.TenantID); err != nil {
		return err
	}
	if a.ID == "" {
		return errs.E(op, errs.Invalid, "agent id is empty")
	}
	if a.MaxSessions < 0 || a.Load < 0 {
		return errs.E(op, errs.Invalid, "agent %s: max sessions %d and load %d must not be negative", a.ID, a.MaxSessions, a.Load)
	}
	groups := make([]string, 0, len(a.Groups))
	for _, g := range a.Groups {
		if err := checkGroup(op, g); err != nil {
			return err
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	idle := a.IdleSince
	if idle.IsZero() {
		idle = q.Clock.Now()
	}
	if us := idle.UnixMicro(); us < 0 || us > maxIdleMicros {
		return errs.E(op, errs.Invalid, "agent %s: idle since %s outside 1970..2255", a.ID, idle)
	}
	csv := strings.Join(groups, ",")
	k := q.keys(a.TenantID)
	for range maxGroupsRetries {
		oldCSV, _, err := q.agentGroups(ctx, k, a.ID)
		if err != nil {
			return redisErr(op, err)
		}
		keys := []string{k.agent(a.ID)}
		for _, g := range groups {
			keys = append(keys, k.available(g))
		}
		for _, g := range splitGroups(oldCSV) {
			if !slices.Contains(groups, g) {
				keys = append(keys, k.available(g))
			}
		}
		code, err := scriptAgentReady.Run(ctx, q.c, keys,
			a.ID, a.MaxSessions, a.Load, idle.UnixMicro(), csv, len(groups), oldCSV).Int64()
		if err != nil {
			return redisErr(op, fmt.Errorf("agent %s ready: %w", a.ID, err))
		}
		switch err := codeErr(code); {
		case err == nil:
			return nil
		case errors.Is(err, errGroupsChanged):
			continue
		default:
			return errs.Wrap(op, fmt.Errorf("agent %s ready: %w", a.ID, err))
		}
	}
	return groupsChurn(op, a.ID)
}

// AgentNotReady takes the agent out of every group's available set and
// clears their ready flag; their load stays so the sessions they still
// hold count when they return. An agent routing does not know is already
// out of routing, so that is not an error.
func (q *Queue) AgentNotReady(ctx context.Context, tenantID, agentID string) error {
	const op = "acdredis.AgentNotReady"
	err := q.runOnAgentGroups(ctx, op, tenantID, agentID, scriptAgentNotReady, nil)
	if errors.Is(err, ErrUnknownAgent) {
		return nil
	}
	return err
}

// Release frees one unit of an agent's capacity; at zero load it does
// nothing. A ready agent who was full rejoins their groups at the tail of
// the available sets; one who still had room keeps their place. It returns
// ErrUnknownAgent for an agent routing holds no state for, which means the
// routing state drifted from the database and needs a rebuild.
func (q *Queue) Release(ctx context.Context, tenantID, agentID string) error {
	const op = "acdredis.Release"
	return q.runOnAgentGroups(ctx, op, tenantID, agentID, scriptRelease,
		[]any{q.Clock.Now().UnixMicro()})
}

// Claim implements acd.Queue.
func (q *Queue) Claim(ctx context.Context, tenantID, agentID string) (bool, error) {
	const op = "acdredis.Claim"
	if err := checkTenant(op, tenantID); err != nil {
		return false, err
	}
	if agentID == "" {
		return false, errs.E(op, errs.Invalid, "agent id is empty")
	}
	code, err := scriptClaim.Run(ctx, q.c, []string{q.keys(tenantID).agent(agentID)}).Int64()
	if err != nil {
		return false, redisErr(op, fmt.Errorf("claim agent %s: %w", agentID, err))
	}
	switch code {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	if err := codeErr(code); err != nil {
		if errs.Is(err, errs.NotFound) {
			return false, nil // not in routing: not ready
		}
		return false, errs.Wrap(op, fmt.Errorf("claim agent %s: %w", agentID, err))
	}
	return false, nil
}

// runOnAgentGroups runs a script whose contract is KEYS = agent hash then
// the available set of each of the agent's groups, ARGV = agent id, the
// groups csv the KEYS were built from, then extra. It rereads the groups
// and retries when they changed in between.
func (q *Queue) runOnAgentGroups(ctx context.Context, op, tenantID, agentID string, s *redis.Script, extra []any) error {
	if err := checkTenant(op, tenantID); err != nil {
		return err
	}
	if agentID == "" {
		return errs.E(op, errs.Invalid, "agent id is empty")
	}
	k := q.keys(tenantID)
	for range maxGroupsRetries {
		csv, _, err := q.agentGroups(ctx, k, agentID)
		if err != nil {
			return redisErr(op, err)
		}
		keys := []string{k.agent(agentID)}
		for _, g := range splitGroups(csv) {
			keys = append(keys, k.available(g))
		}
		code, err := s.Run(ctx, q.c, keys, append([]any{agentID, csv}, extra...)...).Int64()
		if err != nil {
			return redisErr(op, fmt.Errorf("agent %s: %w", agentID, err))
		}
		switch err := codeErr(code); {
		case err == nil:
			return nil
		case errors.Is(err, errGroupsChanged):
			continue
		default:
			return errs.Wrap(op, fmt.Errorf("agent %s: %w", agentID, err))
		}
	}
	return groupsChurn(op, agentID)
}

// MatchGroup hands the group's head sessions to its longest-idle agents
// with spare capacity, at most limit of them. Each script run is atomic;
// when the available set holds more agents than were passed as candidates,
// MatchGroup runs it again with the next ones. Assignments made before an
// error are returned with it: they are already recorded in Redis and the
// caller must deliver them.
func (q *Queue) MatchGroup(ctx context.Context, tenantID, groupID string, limit int) ([]acd.Assignment, error) {
	const op = "acdredis.MatchGroup"
	if err := checkTenant(op, tenantID); err != nil {
		return nil, err
	}
	if err := checkGroup(op, groupID); err != nil {
		return nil, err
	}
	k := q.keys(tenantID)
	waiting, enqueued, available := k.waiting(groupID), k.enqueued(groupID), k.available(groupID)
	var out []acd.Assignment
	window := min(limit, maxCandidates-candidateSlack) + candidateSlack // no overflow for a huge limit
	for idle := 0; len(out) < limit && idle < maxIdleRounds; {
		pipe := q.c.Pipeline()
		nWaiting := pipe.ZCard(ctx, waiting)
		cands := pipe.ZRange(ctx, available, 0, int64(window-1))
		if _, err := pipe.Exec(ctx); err != nil {
			return out, redisErr(op, fmt.Errorf("match group %s: %w", groupID, err))
		}
		if nWaiting.Val() == 0 || len(cands.Val()) == 0 {
			break
		}
		keys := make([]string, 0, 3+len(cands.Val()))
		keys = append(keys, waiting, enqueued, available)
		now := q.Clock.Now()
		args := make([]any, 0, 3+len(cands.Val()))
		args = append(args, now.UnixMicro(), limit-len(out), groupID)
		for _, id := range cands.Val() {
			keys = append(keys, k.agent(id))
			args = append(args, id)
		}
		res, err := scriptMatchGroup.Run(ctx, q.c, keys, args...).Result()
		if err != nil {
			return out, redisErr(op, fmt.Errorf("match group %s: %w", groupID, err))
		}
		code, ms, err := parseMatches(res)
		if err != nil {
			return out, errs.Wrap(op, fmt.Errorf("match group %s: %w", groupID, err))
		}
		for _, m := range ms {
			out = append(out, acd.Assignment{
				TenantID:  tenantID,
				SessionID: m.session,
				GroupID:   groupID,
				AgentID:   m.other,
				Waited:    waited(now, m),
			})
		}
		switch err := codeErr(code); {
		case err == nil:
			return out, nil
		case errors.Is(err, errMoreAgents):
			if len(ms) == 0 {
				idle++
				window = min(window*2, maxCandidates)
			} else {
				idle = 0
			}
		default:
			return out, errs.Wrap(op, fmt.Errorf("match group %s: %w", groupID, err))
		}
	}
	return out, nil
}

// MatchAgent gives the agent the best waiting sessions across all their
// groups (highest priority, then earliest enqueued) up to their spare
// capacity, in one script. An agent who is not ready, full or unknown gets
// nothing; that is not an error, since matching is triggered by events that
// may race a state change.
func (q *Queue) MatchAgent(ctx context.Context, tenantID, agentID string) ([]acd.Assignment, error) {
	const op = "acdredis.MatchAgent"
	if err := checkTenant(op, tenantID); err != nil {
		return nil, err
	}
	if agentID == "" {
		return nil, errs.E(op, errs.Invalid, "agent id is empty")
	}
	k := q.keys(tenantID)
	for range maxGroupsRetries {
		csv, ok, err := q.agentGroups(ctx, k, agentID)
		if err != nil {
			return nil, redisErr(op, err)
		}
		groups := splitGroups(csv)
		if !ok || len(groups) == 0 {
			return nil, nil
		}
		keys := make([]string, 0, 1+3*len(groups))
		keys = append(keys, k.agent(agentID))
		now := q.Clock.Now()
		args := make([]any, 0, 3+len(groups))
		args = append(args, now.UnixMicro(), agentID, csv)
		for _, g := range groups {
			keys = append(keys, k.waiting(g), k.enqueued(g), k.available(g))
			args = append(args, g)
		}
		res, err := scriptMatchAgent.Run(ctx, q.c, keys, args...).Result()
		if err != nil {
			return nil, redisErr(op, fmt.Errorf("match agent %s: %w", agentID, err))
		}
		code, ms, err := parseMatches(res)
		if err != nil {
			return nil, errs.Wrap(op, fmt.Errorf("match agent %s: %w", agentID, err))
		}
		switch err := codeErr(code); {
		case err == nil:
			var out []acd.Assignment
			for _, m := range ms {
				out = append(out, acd.Assignment{
					TenantID:  tenantID,
					SessionID: m.session,
					GroupID:   m.other,
					AgentID:   agentID,
					Waited:    waited(now, m),
				})
			}
			return out, nil
		case errors.Is(err, errGroupsChanged):
			continue
		case errors.Is(err, ErrUnknownAgent):
			return nil, nil
		default:
			return nil, errs.Wrap(op, fmt.Errorf("match agent %s: %w", agentID, err))
		}
	}
	return nil, groupsChurn(op, agentID)
}

// Reset deletes every key of the tenant under the prefix, before a rebuild
// from the database. It walks the keyspace with SCAN, so it is not atomic:
// routing of the tenant must be paused while it runs.
func (q *Queue) Reset(ctx context.Context, tenantID string) error {
	const op = "acdredis.Reset"
	if err := checkTenant(op, tenantID); err != nil {
		return err
	}
	iter := q.c.Scan(ctx, 0, q.keys(tenantID).pattern(), 1000).Iterator()
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

// agentGroups reads the comma-separated groups of an agent; ok is false
// when routing holds no state for the agent.
func (q *Queue) agentGroups(ctx context.Context, k keys, agentID string) (csv string, ok bool, err error) {
	csv, err = q.c.HGet(ctx, k.agent(agentID), "groups").Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read groups of agent %s: %w", agentID, err)
	}
	return csv, true, nil
}

func splitGroups(csv string) []string {
	if csv == "" {
		return nil
	}
	return strings.Split(csv, ",")
}

// waited is how long a matched session waited, from its enqueue time or,
// should the enqueue-time hash lack it, from its score.
func waited(now time.Time, m scriptMatch) time.Duration {
	ms, err := strconv.ParseInt(m.enqueuedMs, 10, 64)
	if err != nil {
		var ok bool
		if ms, ok = enqueuedFromScore(m.score); !ok {
			return 0
		}
	}
	return max(now.Sub(time.UnixMilli(ms)), 0)
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

func checkGroup(op, groupID string) error {
	if groupID == "" {
		return errs.E(op, errs.Invalid, "group id is empty")
	}
	// Agents' groups are stored comma-separated.
	if strings.Contains(groupID, ",") {
		return errs.E(op, errs.Invalid, "group id %q contains a comma", groupID)
	}
	return nil
}

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

func groupsChurn(op, agentID string) error {
	return errs.E(op, errs.Conflict, "groups of agent %s kept changing; gave up after %d tries", agentID, maxGroupsRetries)
}
