package loadgen

// The routing-engine bench behind `switchboard bench acd`: it drives an
// acd.Queue (acdredis) directly, without HTTP, WebSockets or a database, to
// measure what the ACD itself sustains on a Redis server and to check, on
// every assignment, the invariants routing promises: a session is assigned
// once, to an agent of its group, and no agent ever holds more than their
// capacity.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/internal/rdb"
)

// Targets the routing engine is held to (2,000 agents in 50 groups, 3
// skills each, on a real Redis); the report says whether a run met them.
const (
	TargetMatchesPerSec = 30000
	// TargetP99 is the enqueue→assign p99 to hold at half the target rate.
	TargetP99 = 5 * time.Millisecond
)

// EmbeddedRedis is the ACDConfig.RedisURL that starts an in-process
// miniredis instead of connecting to a server.
const EmbeddedRedis = "embedded"

// CeilingScript is the Lua script whose unpipelined EVALSHA rate is the
// ceiling a run's matches/s is compared with: five commands shaped like
// the smallest possible match — read the head of the waiting line, read
// the agent, count the session against the agent, re-score the agent in
// the available set and take a member out of the line. A real match
// (lua/lib.lua) does all of this and more, and a match costs two script
// operations (the enqueue that assigns and the release; batched, several
// operations share one script call), so a ratio well below 1 is
// expected; the ratio tells how far the engine is from the cheapest
// script Redis could run per match.
const CeilingScript = "redis.call('ZRANGE',KEYS[1],0,0) redis.call('HGET',KEYS[2],'x') " +
	"redis.call('HINCRBY',KEYS[2],'y',1) redis.call('ZADD',KEYS[1],1,'m') redis.call('ZREM',KEYS[1],'n') return 1"

// acdSlack bounds the drain, the checks and the clean-up after the load.
const acdSlack = 60 * time.Second

// ACDConfig describes a routing-engine run; DefaultACDConfig holds the
// defaults.
type ACDConfig struct {
	// RedisURL is the server (redis://...); EmbeddedRedis (or "") starts an
	// in-process miniredis.
	RedisURL string
	// Prefix starts every key of the run; empty picks a fresh random one.
	// The run deletes its keys at the end.
	Prefix string
	// Tenant is the routing tenant of the run.
	Tenant string
	// Agents each serve Skills distinct groups out of Groups, spread so that
	// every group has the same number of agents (when Agents*Skills is a
	// multiple of Groups), and take up to MaxSessions sessions each.
	Agents      int
	Groups      int
	Skills      int
	MaxSessions int
	// Strategy every group routes by.
	Strategy acd.Strategy
	// PipelineConns is acdredis.Options.PipelineConns: 0 sends every script
	// call on its own round trip, n batches calls over n connections.
	PipelineConns int
	// Workers are the goroutines issuing calls, one call at a time each.
	Workers int
	// Warmup runs load before measuring; Duration is the measured phase.
	Warmup   time.Duration
	Duration time.Duration
	// Rate, when positive, selects the open-loop latency mode: sessions
	// arrive at this many per second. Zero is the closed-loop throughput
	// mode: every worker enqueues again as soon as its last call returned.
	Rate float64
	// Hold is how long an agent keeps a session before releasing it, in
	// the latency mode; the throughput mode always releases at once.
	Hold time.Duration
	// Ceiling is how long the EVALSHA ceiling (CeilingScript) is measured
	// before the load; 0 skips it.
	Ceiling time.Duration
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// DefaultACDConfig returns the defaults: the target's shape (2,000 agents
// in 50 groups, 3 skills each) on the local Redis.
func DefaultACDConfig() ACDConfig {
	return ACDConfig{
		RedisURL:    "redis://127.0.0.1:6379/0",
		Tenant:      "bench",
		Agents:      2000,
		Groups:      50,
		Skills:      3,
		MaxSessions: 4,
		Strategy:    acd.LongestIdle,
		Workers:     64,
		Warmup:      2 * time.Second,
		Duration:    10 * time.Second,
		Ceiling:     3 * time.Second,
	}
}

// Validate names the flag of every invalid field.
func (c ACDConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Agents < 1 {
		bad("-agents must be at least 1")
	}
	if c.Groups < 1 {
		bad("-groups must be at least 1")
	}
	if c.Skills < 1 || c.Skills > c.Groups {
		bad("-skills must be between 1 and -groups (%d)", c.Groups)
	}
	if c.MaxSessions < 1 {
		bad("-max-sessions must be at least 1")
	}
	if !c.Strategy.Valid() {
		bad("-strategy %q is not one of %v", c.Strategy, acd.Strategies())
	}
	if c.PipelineConns < 0 {
		bad("-pipeline-conns must not be negative")
	}
	if c.Workers < 1 {
		bad("-workers must be at least 1")
	}
	if c.Duration <= 0 {
		bad("-duration must be positive")
	}
	if c.Warmup < 0 {
		bad("-warmup must not be negative")
	}
	if c.Rate < 0 {
		bad("-rate must not be negative")
	}
	if c.Hold < 0 {
		bad("-hold must not be negative")
	}
	if c.Hold > 0 && c.Rate == 0 {
		bad("-hold needs -rate (the throughput mode releases at once)")
	}
	if c.Ceiling < 0 {
		bad("-ceiling must not be negative")
	}
	if c.Tenant == "" || strings.ContainsAny(c.Tenant, "{}:") {
		bad("-tenant must be non-empty without { } or :")
	}
	if u := c.RedisURL; u != "" && u != EmbeddedRedis {
		if _, err := redis.ParseURL(u); err != nil {
			bad("-redis: %v", err)
		}
	}
	return errors.Join(errs...)
}

func (c ACDConfig) embedded() bool { return c.RedisURL == "" || c.RedisURL == EmbeddedRedis }

// ACDLatency summarises latencies: nearest-rank percentiles in ms.
type ACDLatency struct {
	Count  int     `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	Maxms  float64 `json:"max_ms"`
	Meanms float64 `json:"mean_ms"`
}

func summarizeACD(samples []time.Duration) ACDLatency {
	n := len(samples)
	if n == 0 {
		return ACDLatency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return ACDLatency{
		Count: n, P50ms: ms(percentile(samples, 50)), P90ms: ms(percentile(samples, 90)),
		P99ms: ms(percentile(samples, 99)), P999ms: ms(percentile(samples, 99.9)),
		Maxms: ms(samples[n-1]), Meanms: ms(sum / time.Duration(n)),
	}
}

// ACDCeiling is the unpipelined EVALSHA rate of CeilingScript measured in
// the same run, on the same server, with as many clients as workers.
type ACDCeiling struct {
	Script      string  `json:"script"`
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	Calls       int64   `json:"calls"`
	CallsPerSec float64 `json:"calls_per_sec"`
	// RedisBenchmark is the equivalent redis-benchmark command, when
	// redis-benchmark is installed and the server is not embedded.
	RedisBenchmark string `json:"redis_benchmark,omitempty"`
}

// ACDCheck is what the run verified. Every count but Enqueued, Assigned
// and Waiting is a violation when non-zero.
type ACDCheck struct {
	// Enqueued and Assigned over the whole run (warm-up included); Waiting
	// is what the groups' queues hold at the end.
	Enqueued int64 `json:"enqueued"`
	Assigned int64 `json:"assigned"`
	Waiting  int64 `json:"waiting"`
	// DoubleAssigned: assignments of a session already assigned.
	DoubleAssigned int64 `json:"double_assigned"`
	// UnknownSession: assignments of a session this run never enqueued.
	UnknownSession int64 `json:"unknown_session"`
	// WrongGroup: a session assigned from another group than its own.
	WrongGroup int64 `json:"wrong_group"`
	// NotSkilled: a session given to an agent who does not serve its group.
	NotSkilled int64 `json:"not_skilled"`
	// OverCapacity: an agent seen holding more than MaxSessions. The
	// count of assignments seen minus releases sent never exceeds the
	// agent's true load, so this check has no false positives.
	OverCapacity int64 `json:"over_capacity"`
	// NotAdded: an enqueue of a new session that reported no add.
	NotAdded int64 `json:"not_added"`
	// Lost: sessions neither assigned nor waiting at the end (or waiting
	// sessions the run never enqueued, when negative).
	Lost int64 `json:"lost"`
	// Stranded: sessions still waiting at the end, when every agent is
	// free again.
	Stranded int64 `json:"stranded"`
	// LoadNotZero: agents whose routing load, readiness or capacity is not
	// what it must be once every session was released.
	LoadNotZero int `json:"load_not_zero"`
	// AvailMissing: free agents missing from their groups' available sets
	// at the end (they would never be picked by an enqueue).
	AvailMissing int `json:"avail_missing"`
	// CallErrors: calls that failed; an error leaves the outcome of its
	// call unknown, so the end-of-run counts may then be off.
	CallErrors int64  `json:"call_errors"`
	FirstError string `json:"first_error,omitempty"`
	// Violations describes the first violations found.
	Violations []string `json:"violations,omitempty"`
}

// ACDResult is the outcome of RunACD.
type ACDResult struct {
	Backend       string  `json:"backend"` // "redis" or "embedded"
	RedisURL      string  `json:"redis_url,omitempty"`
	RedisVersion  string  `json:"redis_version,omitempty"`
	CPUs          int     `json:"cpus"`
	Mode          string  `json:"mode"` // "throughput" or "latency"
	Agents        int     `json:"agents"`
	Groups        int     `json:"groups"`
	Skills        int     `json:"skills"`
	MaxSessions   int     `json:"max_sessions"`
	Strategy      string  `json:"strategy"`
	PipelineConns int     `json:"pipeline_conns"`
	Workers       int     `json:"workers"`
	WarmupSec     float64 `json:"warmup_sec"`
	DurationSec   float64 `json:"duration_sec"`
	SetupSec      float64 `json:"setup_sec"`
	TargetRate    float64 `json:"target_rate,omitempty"`
	HoldMs        float64 `json:"hold_ms,omitempty"`

	// Counts and rates of the measured window.
	Enqueued       int64   `json:"enqueued"`
	Matches        int64   `json:"matches"`
	MatchesPerSec  float64 `json:"matches_per_sec"`
	EnqueuesPerSec float64 `json:"enqueues_per_sec"`
	ReleasesPerSec float64 `json:"releases_per_sec"`
	// EnqueueAssign is enqueue→assign of the sessions enqueued in the
	// window: from just before Enqueue to the return of the call (Enqueue,
	// or a later Release) that assigned the session.
	EnqueueAssign ACDLatency `json:"enqueue_assign"`
	// ArrivalAssign (latency mode) counts from the session's scheduled
	// arrival, so it adds the time the session waited for a worker.
	ArrivalAssign *ACDLatency `json:"arrival_assign,omitempty"`
	// ReleaseCall is the round trip of Release calls in the window.
	ReleaseCall ACDLatency `json:"release_call"`
	// Unassigned counts sessions enqueued in the window and not assigned
	// by the end of the run.
	Unassigned int64 `json:"unassigned"`

	// RedisCPU is the CPU Redis used in the window, in cores; BenchCPU the
	// bench process's own (with the embedded server inside it); MachineCPU
	// all of this machine's (from /proc/stat). What MachineCPU has beyond
	// the other two (with Redis on this machine) was used by other
	// processes: a figure measured next to them is not the machine's.
	RedisCPU   float64 `json:"redis_cpu_cores,omitempty"`
	BenchCPU   float64 `json:"bench_cpu_cores"`
	MachineCPU float64 `json:"machine_cpu_cores,omitempty"`
	// RedisCommandsPerMatch counts the commands the scripts ran per match
	// (INFO commandstats), EVALSHA itself excluded.
	RedisCommandsPerMatch float64 `json:"redis_commands_per_match,omitempty"`

	Ceiling *ACDCeiling `json:"ceiling,omitempty"`
	// RatioToCeiling is MatchesPerSec / Ceiling.CallsPerSec.
	RatioToCeiling float64 `json:"ratio_to_ceiling,omitempty"`

	Check ACDCheck `json:"check"`
}

// RunACD runs the routing engine under load as cfg describes (see
// ACDConfig) and checks its invariants. The result is returned even with
// an error when the load ran; an error then reports failed calls or
// correctness violations. Cancelling ctx ends the load early; the calls in
// flight still finish and every session assigned is still released, so
// that the checks stay meaningful.
func RunACD(ctx context.Context, cfg ACDConfig) (ACDResult, error) {
	if err := cfg.Validate(); err != nil {
		return ACDResult{}, err
	}
	res := ACDResult{
		Backend: "redis", RedisURL: redactURL(cfg.RedisURL), CPUs: runtime.NumCPU(), Mode: "throughput",
		Agents: cfg.Agents, Groups: cfg.Groups, Skills: cfg.Skills, MaxSessions: cfg.MaxSessions,
		Strategy: string(cfg.Strategy), PipelineConns: cfg.PipelineConns, Workers: cfg.Workers,
		WarmupSec: cfg.Warmup.Seconds(), DurationSec: cfg.Duration.Seconds(),
		TargetRate: cfg.Rate, HoldMs: float64(cfg.Hold) / 1e6,
	}
	if cfg.embedded() {
		res.Backend, res.RedisURL = "embedded", ""
	}
	if cfg.Rate > 0 {
		res.Mode = "latency"
	}
	prefix := cfg.Prefix
	if prefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		prefix = "sbbench" + hex.EncodeToString(b[:])
	}

	// Calls run on a context that outlives ctx: a script that ran may have
	// made assignments, and the run must see and release them all.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Ceiling+cfg.Warmup+cfg.Duration+acdSlack)
	defer cancel()

	c, err := openACDRedis(work, cfg, prefix)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if c.Embedded == nil {
		if info, err := redisInfo(work, c, "server"); err == nil {
			res.RedisVersion = info["redis_version"]
		}
	}
	q := acdredis.NewWithOptions(c, acdredis.Options{PipelineConns: cfg.PipelineConns})
	defer q.Close()
	r := newACDRun(work, cfg, q)
	r.logf("keys under %s, tenant %s", prefix, cfg.Tenant)
	defer func() {
		if err := q.Reset(work, cfg.Tenant); err != nil {
			r.logf("clean-up: %v", err)
		}
	}()

	if cfg.Ceiling > 0 {
		ceil, err := measureCeiling(ctx, c, cfg)
		if err != nil {
			return res, err
		}
		res.Ceiling = ceil
		r.logf("ceiling: %.0f EVALSHA calls/s (%d clients, unpipelined)", ceil.CallsPerSec, ceil.Clients)
	}

	t0 := time.Now()
	if err := r.setup(); err != nil {
		return res, err
	}
	res.SetupSec = time.Since(t0).Seconds()
	r.logf("setup: %d agents ready in %d groups in %.1fs", cfg.Agents, cfg.Groups, res.SetupSec)

	var s0, s1 acdSnapshot
	if cfg.Rate > 0 {
		s0, s1, err = r.openLoop(ctx, c)
	} else {
		s0, s1, err = r.closedLoop(ctx, c)
	}
	r.holds.Wait()
	r.fill(&res, s0, s1)
	if res.Ceiling != nil && res.Ceiling.CallsPerSec > 0 {
		res.RatioToCeiling = res.MatchesPerSec / res.Ceiling.CallsPerSec
	}
	r.verify(&res.Check)
	if err != nil {
		return res, err
	}
	return res, res.Check.err()
}

func (ck ACDCheck) err() error {
	if len(ck.Violations) == 0 {
		return nil
	}
	return fmt.Errorf("acd bench: %d problem(s): %s", len(ck.Violations), strings.Join(ck.Violations, "; "))
}

// openACDRedis connects with a pool large enough for every worker (the
// embedded server's client keeps rdb's pool of 64).
func openACDRedis(ctx context.Context, cfg ACDConfig, prefix string) (*rdb.Client, error) {
	if cfg.embedded() {
		return rdb.Open(ctx, "", prefix)
	}
	u := cfg.RedisURL
	if pu, err := url.Parse(u); err == nil && cfg.Workers+8 > 64 {
		v := pu.Query()
		if v.Get("pool_size") == "" {
			v.Set("pool_size", strconv.Itoa(cfg.Workers+8))
			pu.RawQuery = v.Encode()
			u = pu.String()
		}
	}
	c, err := rdb.Open(ctx, u, prefix)
	if err != nil {
		return nil, fmt.Errorf("acd bench: redis %s: %w", redactURL(cfg.RedisURL), err)
	}
	return c, nil
}

func redactURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.User == nil {
		return u
	}
	return pu.Redacted()
}

// measureCeiling runs CeilingScript with EVALSHA from cfg.Workers
// goroutines, each waiting for its reply before the next call.
func measureCeiling(ctx context.Context, c *rdb.Client, cfg ACDConfig) (*ACDCeiling, error) {
	s := redis.NewScript(CeilingScript)
	if err := s.Load(ctx, c).Err(); err != nil {
		return nil, fmt.Errorf("acd bench: load ceiling script: %w", err)
	}
	keys := []string{c.TenantKey(cfg.Tenant, "ceiling", "z"), c.TenantKey(cfg.Tenant, "ceiling", "h")}
	var (
		calls  atomic.Int64
		stop   atomic.Bool
		wg     sync.WaitGroup
		errMu  sync.Mutex
		firstE error
	)
	start := time.Now()
	for range cfg.Workers {
		wg.Go(func() {
			for !stop.Load() {
				if err := s.EvalSha(ctx, c, keys).Err(); err != nil {
					errMu.Lock()
					if firstE == nil && ctx.Err() == nil {
						firstE = err
					}
					errMu.Unlock()
					stop.Store(true)
					return
				}
				calls.Add(1)
			}
		})
	}
	select {
	case <-time.After(cfg.Ceiling):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	if firstE != nil {
		return nil, fmt.Errorf("acd bench: ceiling: %w", firstE)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acd bench: ceiling interrupted: %w", err)
	}
	el := time.Since(start)
	out := &ACDCeiling{Script: CeilingScript, Clients: cfg.Workers, Seconds: el.Seconds(), Calls: calls.Load(),
		CallsPerSec: float64(calls.Load()) / el.Seconds()}
	if c.Embedded == nil {
		if _, err := exec.LookPath("redis-benchmark"); err == nil {
			out.RedisBenchmark = redisBenchmarkCommand(cfg.RedisURL, s.Hash(), cfg.Workers, max(500000, int(5*out.CallsPerSec)))
		}
	}
	return out, nil
}

// redisBenchmarkCommand is the shell command that measures the same
// ceiling with redis-benchmark. Its keys are fixed names outside any run's
// prefix (redis-benchmark cannot know one); a password is left to
// $REDISCLI_AUTH, which both tools read.
func redisBenchmarkCommand(rawURL, sha string, clients, n int) string {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return ""
	}
	host, port := opt.Addr, "6379"
	if i := strings.LastIndex(opt.Addr, ":"); i >= 0 {
		host, port = opt.Addr[:i], opt.Addr[i+1:]
	}
	conn := fmt.Sprintf("-h %s -p %s", host, port)
	if opt.DB != 0 {
		conn += fmt.Sprintf(" -n %d", opt.DB) // redis-cli: -n is the database
	}
	bench := fmt.Sprintf("-h %s -p %s", host, port)
	if opt.DB != 0 {
		bench += fmt.Sprintf(" --dbnum %d", opt.DB)
	}
	return fmt.Sprintf(`redis-cli %s SCRIPT LOAD "%s" && redis-benchmark %s -c %d -n %d -q EVALSHA %s 2 sbbench:ceiling:z sbbench:ceiling:h`,
		conn, CeilingScript, bench, clients, n, sha)
}

// acdShards splits the session table so workers rarely share a lock.
const acdShards = 64

// acdSession is what the run remembers of a session it enqueued. Times
// are offsets from the run's base time (monotonic).
type acdSession struct {
	start   time.Duration // just before Enqueue
	arrival time.Duration // scheduled arrival (latency mode), else start
	group   int32
	agent   int32 // assigned to; -1 while not assigned
	// uncertain: its Enqueue failed, so whether it waits is unknown.
	uncertain bool
}

type acdShard struct {
	mu sync.Mutex
	m  map[uint64]acdSession // guarded by mu
}

// acdSink collects latency samples; each worker has one, and release
// timers (Hold) share them by session number.
type acdSink struct {
	mu      sync.Mutex
	assign  []time.Duration // guarded by mu
	arrival []time.Duration // guarded by mu
	release []time.Duration // guarded by mu
}

// acdRun is the state of one RunACD.
type acdRun struct {
	cfg ACDConfig
	q   acd.Queue
	// ctx carries every call; it outlives the caller's so that assignments
	// made by calls in flight are still seen and released.
	ctx      context.Context
	base     time.Time
	winStart time.Duration // measured window, offsets from base
	winEnd   time.Duration

	groups   []string
	agents   []string
	agentIdx map[string]int
	skills   [][]int32 // group indexes per agent
	members  []int     // agents per group
	load     []atomic.Int64

	sessions [acdShards]acdShard
	sinks    []*acdSink
	nextID   atomic.Uint64
	holds    sync.WaitGroup

	enqueued, matches, releases atomic.Int64
	notAdded, double, unknown   atomic.Int64
	wrongGroup, notSkilled      atomic.Int64
	overCap, callErrors         atomic.Int64

	mu         sync.Mutex
	firstErr   error    // guarded by mu
	violations []string // guarded by mu
}

func newACDRun(ctx context.Context, cfg ACDConfig, q acd.Queue) *acdRun {
	r := &acdRun{cfg: cfg, q: q, ctx: ctx, agentIdx: make(map[string]int, cfg.Agents)}
	for g := range cfg.Groups {
		r.groups = append(r.groups, fmt.Sprintf("g%03d", g))
	}
	r.members = make([]int, cfg.Groups)
	// Agent i serves groups i, i+step, i+2*step... (mod Groups): distinct
	// because step*Skills <= Groups, and each group gets the same number
	// of agents when Agents*Skills is a multiple of Groups.
	step := cfg.Groups / cfg.Skills
	for i := range cfg.Agents {
		id := fmt.Sprintf("a%05d", i)
		r.agents = append(r.agents, id)
		r.agentIdx[id] = i
		sk := make([]int32, cfg.Skills)
		for k := range sk {
			g := (i + k*step) % cfg.Groups
			sk[k] = int32(g)
			r.members[g]++
		}
		r.skills = append(r.skills, sk)
	}
	r.load = make([]atomic.Int64, cfg.Agents)
	for i := range r.sessions {
		r.sessions[i].m = make(map[uint64]acdSession)
	}
	for range cfg.Workers {
		r.sinks = append(r.sinks, &acdSink{})
	}
	return r
}

func (r *acdRun) logf(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench acd: "+format+"\n", a...)
	}
}

// violation records a correctness problem; the first few are described.
func (r *acdRun) violation(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.violations) < 10 {
		r.violations = append(r.violations, fmt.Sprintf(format, a...))
	}
}

func (r *acdRun) fail(what string, err error) {
	r.callErrors.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstErr == nil {
		r.firstErr = fmt.Errorf("%s: %w", what, err)
	}
}

// setup configures the groups and makes every agent ready, from as many
// goroutines as workers.
func (r *acdRun) setup() error {
	for _, g := range r.groups {
		if err := r.q.Configure(r.ctx, acd.Group{TenantID: r.cfg.Tenant, ID: g, Strategy: r.cfg.Strategy}); err != nil {
			return fmt.Errorf("acd bench: configure group %s: %w", g, err)
		}
	}
	r.base = time.Now()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for w := range r.cfg.Workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.agents) {
					return
				}
				a := acd.Agent{TenantID: r.cfg.Tenant, ID: r.agents[i], MaxSessions: r.cfg.MaxSessions,
					Proficiency: map[string]int{}, Weight: map[string]int{}}
				// A group's agents come in runs i, i+Groups, i+2*Groups...: a
				// proficiency of 5, 4, 3 by i/Groups puts a third of every
				// group in the skills strategy's first ring, and weights
				// 1..10 give the weighted strategy uneven shares.
				round := i / r.cfg.Groups
				for _, g := range r.skills[i] {
					name := r.groups[g]
					a.Groups = append(a.Groups, name)
					a.Proficiency[name] = 5 - round%3
					a.Weight[name] = 1 + round%10
				}
				as, err := r.q.AgentReady(r.ctx, a)
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = fmt.Errorf("acd bench: agent %s ready: %w", a.ID, err)
					}
					errMu.Unlock()
					return
				}
				// Nothing waits yet, but whatever a ready agent gets must
				// still be checked and released.
				r.observe(as, time.Now(), r.sinks[w])
				r.serve(as, r.sinks[w])
			}
		})
	}
	wg.Wait()
	return first
}

func sessionID(n uint64) string { return "s" + strconv.FormatUint(n, 36) }

func parseSessionID(id string) (uint64, bool) {
	if len(id) < 2 || id[0] != 's' {
		return 0, false
	}
	n, err := strconv.ParseUint(id[1:], 36, 64)
	return n, err == nil
}

// enqueueOne enqueues a new session in a random group and serves what
// the enqueue's match assigned. arrival is the scheduled arrival (zero in
// the throughput mode).
func (r *acdRun) enqueueOne(rng *mrand.Rand, sink *acdSink, arrival time.Time) {
	n := r.nextID.Add(1)
	g := rng.IntN(len(r.groups))
	start := time.Now()
	s := acdSession{start: start.Sub(r.base), arrival: start.Sub(r.base), group: int32(g), agent: -1}
	if !arrival.IsZero() {
		s.arrival = arrival.Sub(r.base)
	}
	sh := &r.sessions[n%acdShards]
	sh.mu.Lock()
	sh.m[n] = s
	sh.mu.Unlock()
	r.enqueued.Add(1)
	res, err := r.q.Enqueue(r.ctx, acd.Item{TenantID: r.cfg.Tenant, GroupID: r.groups[g], SessionID: sessionID(n)})
	now := time.Now()
	if err != nil {
		sh.mu.Lock()
		s := sh.m[n]
		s.uncertain = true
		sh.m[n] = s
		sh.mu.Unlock()
		r.fail("enqueue "+sessionID(n), err)
		return
	}
	if !res.Added {
		r.notAdded.Add(1)
		r.violation("enqueue of new session %s in %s: not added (full=%v)", sessionID(n), r.groups[g], res.Full)
	}
	r.observe(res.Assignments, now, sink)
	if r.cfg.Hold > 0 {
		r.hold(res.Assignments)
		return
	}
	r.serve(res.Assignments, sink)
}

// observe checks assignments returned at now and counts them.
func (r *acdRun) observe(as []acd.Assignment, now time.Time, sink *acdSink) {
	at := now.Sub(r.base)
	for _, a := range as {
		r.matches.Add(1)
		ai, known := r.agentIdx[a.AgentID]
		if !known {
			r.notSkilled.Add(1)
			r.violation("session %s assigned to %q, not an agent of this run", a.SessionID, a.AgentID)
		} else if l := r.load[ai].Add(int64(max(a.Cost, 1))); l > int64(r.cfg.MaxSessions) {
			r.overCap.Add(1)
			r.violation("agent %s holds at least %d sessions, max %d (assignment of %s)", a.AgentID, l, r.cfg.MaxSessions, a.SessionID)
		}
		n, ok := parseSessionID(a.SessionID)
		if !ok {
			r.unknown.Add(1)
			r.violation("assignment of session %q this run never enqueued", a.SessionID)
			continue
		}
		sh := &r.sessions[n%acdShards]
		sh.mu.Lock()
		s, found := sh.m[n]
		prev := s.agent
		if found && prev < 0 {
			s.agent = int32(ai)
			if !known {
				s.agent = int32(len(r.agents)) // assigned, to a stranger
			}
			sh.m[n] = s
		}
		sh.mu.Unlock()
		switch {
		case !found:
			r.unknown.Add(1)
			r.violation("assignment of session %s this run never enqueued", a.SessionID)
			continue
		case prev >= 0:
			r.double.Add(1)
			r.violation("session %s assigned twice: to %s, then to %s", a.SessionID, r.agentName(prev), a.AgentID)
			continue
		}
		if r.groups[s.group] != a.GroupID {
			r.wrongGroup.Add(1)
			r.violation("session %s of group %s assigned from group %s", a.SessionID, r.groups[s.group], a.GroupID)
		}
		if known && !slices.Contains(r.skills[ai], s.group) {
			r.notSkilled.Add(1)
			r.violation("session %s of group %s given to %s, who does not serve it", a.SessionID, r.groups[s.group], a.AgentID)
		}
		if s.start >= r.winStart && s.start < r.winEnd {
			sink.mu.Lock()
			sink.assign = append(sink.assign, at-s.start)
			if r.cfg.Rate > 0 {
				sink.arrival = append(sink.arrival, at-s.arrival)
			}
			sink.mu.Unlock()
		}
	}
}

func (r *acdRun) agentName(i int32) string {
	if int(i) < len(r.agents) {
		return r.agents[i]
	}
	return "an unknown agent"
}

// release frees an assignment's capacity and returns what the release's
// match assigned. The local load drops before the call, so that it never
// runs ahead of the load in Redis (see ACDCheck.OverCapacity).
func (r *acdRun) release(a acd.Assignment, sink *acdSink) []acd.Assignment {
	cost := max(a.Cost, 1)
	if ai, ok := r.agentIdx[a.AgentID]; ok {
		r.load[ai].Add(-int64(cost))
	} else {
		return nil // reported by observe; not ours to release
	}
	t0 := time.Now()
	more, err := r.q.Release(r.ctx, r.cfg.Tenant, a.AgentID, cost)
	now := time.Now()
	r.releases.Add(1)
	if err != nil {
		r.fail("release "+a.AgentID, err)
	}
	if off := t0.Sub(r.base); off >= r.winStart && off < r.winEnd {
		sink.mu.Lock()
		sink.release = append(sink.release, now.Sub(t0))
		sink.mu.Unlock()
	}
	r.observe(more, now, sink)
	return more
}

// serve releases every assignment at once, and what those releases
// assign in turn, until nothing is left.
func (r *acdRun) serve(as []acd.Assignment, sink *acdSink) {
	stack := slices.Clone(as)
	for len(stack) > 0 {
		a := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		stack = append(stack, r.release(a, sink)...)
	}
}

// hold releases each assignment after cfg.Hold, on a timer.
func (r *acdRun) hold(as []acd.Assignment) {
	for _, a := range as {
		r.holds.Add(1)
		time.AfterFunc(r.cfg.Hold, func() {
			defer r.holds.Done()
			n, _ := parseSessionID(a.SessionID)
			r.hold(r.release(a, r.sinks[n%uint64(len(r.sinks))]))
		})
	}
}

// acdSnapshot holds the counters at one moment, to rate the window.
type acdSnapshot struct {
	at                          time.Time
	matches, enqueued, releases int64
	cpu                         time.Duration // this process
	machineBusy                 time.Duration // all CPUs; 0 when unknown
	redisCPU                    float64       // seconds; 0 when unknown
	redisCmds                   int64         // -1 when unknown
}

func (r *acdRun) snapshot(c *rdb.Client) acdSnapshot {
	s := acdSnapshot{at: time.Now(), matches: r.matches.Load(), enqueued: r.enqueued.Load(),
		releases: r.releases.Load(), redisCmds: -1}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.machineBusy = machineBusy()
	if c.Embedded != nil {
		return s
	}
	info, err := redisInfo(r.ctx, c, "cpu", "commandstats")
	if err != nil {
		return s
	}
	user, _ := strconv.ParseFloat(info["used_cpu_user"], 64)
	sys, _ := strconv.ParseFloat(info["used_cpu_sys"], 64)
	s.redisCPU = user + sys
	s.redisCmds = 0
	for k, v := range info {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		switch name {
		case "evalsha", "evalsha_ro", "eval", "eval_ro", "info", "ping", "script", "script|load",
			"fcall", "fcall_ro", "function", "function|load", "function|list", "function|delete":
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			if n, ok := strings.CutPrefix(f, "calls="); ok {
				c, _ := strconv.ParseInt(n, 10, 64)
				s.redisCmds += c
			}
		}
	}
	return s
}

// machineBusy is the CPU time all CPUs of this machine spent busy since
// boot, from /proc/stat (USER_HZ = 100 on Linux); 0 where unreadable.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// redisInfo reads INFO sections as key → value.
func redisInfo(ctx context.Context, c *rdb.Client, sections ...string) (map[string]string, error) {
	text, err := c.Info(ctx, sections...).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// sleepUntil waits for t or ctx; it reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func workerRand(w int) *mrand.Rand {
	return mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
}

// closedLoop runs the throughput mode: every worker enqueues, releases at
// once whatever got assigned, and enqueues again, for warm-up plus
// duration. Each match thus costs one enqueue and one release operation.
func (r *acdRun) closedLoop(ctx context.Context, c *rdb.Client) (s0, s1 acdSnapshot, err error) {
	start := time.Now()
	r.winStart = start.Sub(r.base) + r.cfg.Warmup
	r.winEnd = r.winStart + r.cfg.Duration
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for w := range r.cfg.Workers {
		wg.Go(func() {
			rng, sink := workerRand(w), r.sinks[w]
			for !stop.Load() {
				r.enqueueOne(rng, sink, time.Time{})
			}
		})
	}
	r.logf("throughput: %d workers, warm-up %s", r.cfg.Workers, r.cfg.Warmup)
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	if !sleepUntil(ctx, r.base.Add(r.winStart)) {
		return s0, s1, fmt.Errorf("acd bench: interrupted during warm-up: %w", ctx.Err())
	}
	s0 = r.snapshot(c)
	r.logf("measuring for %s", r.cfg.Duration)
	sleepUntil(ctx, r.base.Add(r.winEnd))
	s1 = r.snapshot(c)
	return s0, s1, nil
}

// openLoop runs the latency mode: sessions arrive at cfg.Rate, paced over
// the workers. A worker busy with its last call cannot take the next
// arrival; when every worker is busy the pacer does not make up the lost
// arrivals later, so the achieved rate is reported next to the target.
func (r *acdRun) openLoop(ctx context.Context, c *rdb.Client) (s0, s1 acdSnapshot, err error) {
	start := time.Now()
	r.winStart = start.Sub(r.base) + r.cfg.Warmup
	r.winEnd = r.winStart + r.cfg.Duration
	end := r.base.Add(r.winEnd)
	p := newPacer(r.cfg.Rate)
	var wg sync.WaitGroup
	for w := range r.cfg.Workers {
		wg.Go(func() {
			rng, sink := workerRand(w), r.sinks[w]
			for ctx.Err() == nil {
				at := p.reserve(time.Now())
				if !at.Before(end) || !sleepUntil(ctx, at) {
					return
				}
				r.enqueueOne(rng, sink, at)
			}
		})
	}
	r.logf("latency: %.0f sessions/s over %d workers, hold %s, warm-up %s", r.cfg.Rate, r.cfg.Workers, r.cfg.Hold, r.cfg.Warmup)
	defer wg.Wait()
	if !sleepUntil(ctx, r.base.Add(r.winStart)) {
		return s0, s1, fmt.Errorf("acd bench: interrupted during warm-up: %w", ctx.Err())
	}
	s0 = r.snapshot(c)
	r.logf("measuring for %s", r.cfg.Duration)
	sleepUntil(ctx, end)
	s1 = r.snapshot(c)
	return s0, s1, nil
}

// fill computes the window's figures once the load and its releases are
// done.
func (r *acdRun) fill(res *ACDResult, s0, s1 acdSnapshot) {
	if s0.at.IsZero() || s1.at.IsZero() {
		return
	}
	el := s1.at.Sub(s0.at).Seconds()
	res.DurationSec = el
	res.Enqueued = s1.enqueued - s0.enqueued
	res.Matches = s1.matches - s0.matches
	res.MatchesPerSec = float64(res.Matches) / el
	res.EnqueuesPerSec = float64(res.Enqueued) / el
	res.ReleasesPerSec = float64(s1.releases-s0.releases) / el
	res.BenchCPU = (s1.cpu - s0.cpu).Seconds() / el
	if s0.machineBusy > 0 {
		res.MachineCPU = (s1.machineBusy - s0.machineBusy).Seconds() / el
	}
	if s0.redisCPU > 0 {
		res.RedisCPU = (s1.redisCPU - s0.redisCPU) / el
	}
	if s0.redisCmds >= 0 && s1.redisCmds > s0.redisCmds && res.Matches > 0 {
		res.RedisCommandsPerMatch = float64(s1.redisCmds-s0.redisCmds) / float64(res.Matches)
	}
	var assign, arrival, release []time.Duration
	for _, s := range r.sinks {
		s.mu.Lock()
		assign = append(assign, s.assign...)
		arrival = append(arrival, s.arrival...)
		release = append(release, s.release...)
		s.mu.Unlock()
	}
	res.EnqueueAssign = summarizeACD(assign)
	res.ReleaseCall = summarizeACD(release)
	if r.cfg.Rate > 0 {
		l := summarizeACD(arrival)
		res.ArrivalAssign = &l
	}
	for i := range r.sessions {
		sh := &r.sessions[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			if s.agent < 0 && s.start >= r.winStart && s.start < r.winEnd {
				res.Unassigned++
			}
		}
		sh.mu.Unlock()
	}
}

// verify checks, once every assigned session was released, that routing
// is back where it started: nothing lost or stranded, every agent free and
// available in all their groups.
func (r *acdRun) verify(ck *ACDCheck) {
	ctx := r.ctx
	var unassigned []uint64
	for i := range r.sessions {
		sh := &r.sessions[i]
		sh.mu.Lock()
		for n, s := range sh.m {
			ck.Enqueued++
			switch {
			case s.agent >= 0:
				ck.Assigned++
			case !s.uncertain:
				unassigned = append(unassigned, n)
			}
		}
		sh.mu.Unlock()
	}
	ck.DoubleAssigned, ck.UnknownSession = r.double.Load(), r.unknown.Load()
	ck.WrongGroup, ck.NotSkilled = r.wrongGroup.Load(), r.notSkilled.Load()
	ck.OverCapacity, ck.NotAdded = r.overCap.Load(), r.notAdded.Load()

	stats, err := r.q.Stats(ctx, r.cfg.Tenant, r.groups)
	if err != nil {
		r.fail("stats", err)
	}
	for i, s := range stats {
		ck.Waiting += int64(s.Waiting)
		if s.Available < r.members[i] {
			ck.AvailMissing += r.members[i] - s.Available
			r.violation("group %s: %d of its %d agents available at the end, all are free", s.GroupID, s.Available, r.members[i])
		}
		if s.Waiting > 0 && s.Available > 0 {
			ck.Stranded += int64(s.Waiting)
			r.violation("group %s: %d sessions still waiting with %d agents free", s.GroupID, s.Waiting, s.Available)
		}
	}
	if stats != nil {
		ck.Lost = int64(len(unassigned)) - ck.Waiting
		if ck.Lost != 0 {
			r.violation("%d sessions neither assigned nor waiting at the end (%d unassigned, %d waiting)",
				ck.Lost, len(unassigned), ck.Waiting)
		}
	}

	// Every agent must be ready, at their capacity setting and free.
	var (
		next atomic.Int64
		bad  atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(r.cfg.Workers, 16) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.agents) {
					return
				}
				l, err := r.q.AgentLoad(ctx, r.cfg.Tenant, r.agents[i])
				if err != nil {
					r.fail("agent load "+r.agents[i], err)
					continue
				}
				want := acd.AgentLoad{Known: true, Ready: true, Load: 0, Max: r.cfg.MaxSessions}
				if l != want {
					bad.Add(1)
					r.violation("agent %s at the end: %+v, want %+v", r.agents[i], l, want)
				}
				if n := r.load[i].Load(); n != 0 {
					r.violation("agent %s: %d assignments seen and not released", r.agents[i], n)
				}
			}
		})
	}
	wg.Wait()
	ck.LoadNotZero = int(bad.Load())

	ck.CallErrors = r.callErrors.Load()
	r.mu.Lock()
	if r.firstErr != nil {
		ck.FirstError = r.firstErr.Error()
	}
	ck.Violations = slices.Clone(r.violations)
	r.mu.Unlock()
	if ck.CallErrors > 0 {
		ck.Violations = append(ck.Violations, fmt.Sprintf("%d calls failed (first: %s)", ck.CallErrors, ck.FirstError))
	}
}

// WriteText prints the result for people.
func (res ACDResult) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	where := "embedded miniredis (in-process)"
	if res.Backend == "redis" {
		where = "Redis " + res.RedisVersion + " at " + res.RedisURL
	}
	p("ACD routing bench on %s, %d CPUs", where, res.CPUs)
	batching := "unbatched (one round trip per call)"
	if res.PipelineConns > 0 {
		batching = fmt.Sprintf("batched over %d pipeline connections", res.PipelineConns)
	}
	p("  %d agents (max %d sessions, %d skills each) in %d groups, %s; %s; %d workers; setup %.1fs",
		res.Agents, res.MaxSessions, res.Skills, res.Groups, res.Strategy, batching, res.Workers, res.SetupSec)
	if c := res.Ceiling; c != nil {
		p("  ceiling: %.0f calls/s, a 5-command Lua script by EVALSHA, unpipelined, %d clients, %.1fs", c.CallsPerSec, c.Clients, c.Seconds)
		if c.RedisBenchmark != "" {
			p("    same with redis-benchmark: %s", c.RedisBenchmark)
		}
	}
	if res.Mode == "latency" {
		p("  latency mode: %.0f sessions/s wanted, %.0f/s achieved; release after %.1f ms; warm-up %.1fs, measured %.1fs",
			res.TargetRate, res.EnqueuesPerSec, res.HoldMs, res.WarmupSec, res.DurationSec)
	} else {
		p("  throughput mode (closed loop, every match released at once): warm-up %.1fs, measured %.1fs", res.WarmupSec, res.DurationSec)
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	p("")
	// The targets are set for one shape on a real server only.
	shape := res.Backend == "redis" && res.Agents == 2000 && res.Groups == 50 && res.Skills == 3
	line := fmt.Sprintf("matches: %d = %.0f/s", res.Matches, res.MatchesPerSec)
	switch {
	case res.Mode != "throughput":
	case shape:
		line += fmt.Sprintf(" (target ≥ %d/s: %s)", TargetMatchesPerSec, verdict(res.MatchesPerSec >= TargetMatchesPerSec))
	default:
		line += fmt.Sprintf(" (the target, ≥ %d/s, is set for 2,000 agents in 50 groups with 3 skills on real Redis)", TargetMatchesPerSec)
	}
	p("%s", line)
	if res.Ceiling != nil {
		p("  = %.3f of the ceiling (%.0f calls/s)", res.RatioToCeiling, res.Ceiling.CallsPerSec)
	}
	p("  enqueues %.0f/s, releases %.0f/s", res.EnqueuesPerSec, res.ReleasesPerSec)
	cpu := fmt.Sprintf("  CPU: bench process %.2f cores", res.BenchCPU)
	if res.RedisCPU > 0 {
		cpu += fmt.Sprintf(", Redis %.2f cores (%.1f µs per match)", res.RedisCPU, res.RedisCPU/res.MatchesPerSec*1e6)
	}
	if res.RedisCommandsPerMatch > 0 {
		cpu += fmt.Sprintf(", %.1f Redis commands per match inside the scripts", res.RedisCommandsPerMatch)
	}
	p("%s", cpu)
	if res.MachineCPU > 0 {
		other := res.MachineCPU - res.BenchCPU - res.RedisCPU
		p("  machine: %.2f of %d cores busy, %.2f by other processes (with Redis on this machine)", res.MachineCPU, res.CPUs, max(other, 0))
	}
	lat := func(name string, l ACDLatency) {
		p("  %-16s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (%d samples)",
			name, l.P50ms, l.P90ms, l.P99ms, l.P999ms, l.Maxms, l.Count)
	}
	lat("enqueue→assign", res.EnqueueAssign)
	if res.ArrivalAssign != nil {
		lat("arrival→assign", *res.ArrivalAssign)
	}
	lat("release call", res.ReleaseCall)
	if res.Mode == "latency" {
		if !shape || res.TargetRate < TargetMatchesPerSec/2 {
			p("  p99 enqueue→assign %.3f ms (the target, ≤ %s, is set at %d/s in the target's shape)", res.EnqueueAssign.P99ms, TargetP99, TargetMatchesPerSec/2)
		} else {
			ok := res.EnqueueAssign.P99ms <= ms(TargetP99) && res.EnqueuesPerSec >= 0.99*TargetMatchesPerSec/2
			p("  p99 enqueue→assign %.3f ms at %.0f/s (target ≤ %s at %d/s: %s)", res.EnqueueAssign.P99ms,
				res.EnqueuesPerSec, TargetP99, TargetMatchesPerSec/2, verdict(ok))
		}
	}
	if res.Unassigned > 0 {
		p("  %d sessions of the window were not assigned by the end", res.Unassigned)
	}
	ck := res.Check
	p("")
	p("checks: %d sessions enqueued, %d assigned, %d waiting at the end", ck.Enqueued, ck.Assigned, ck.Waiting)
	if len(ck.Violations) == 0 {
		p("  OK: no session assigned twice or across groups, no agent over capacity, none lost or stranded, every agent free and available again")
		return
	}
	p("  double %d, unknown %d, wrong group %d, not skilled %d, over capacity %d, not added %d, lost %d, stranded %d, bad load %d, missing from avail %d, call errors %d",
		ck.DoubleAssigned, ck.UnknownSession, ck.WrongGroup, ck.NotSkilled, ck.OverCapacity, ck.NotAdded, ck.Lost,
		ck.Stranded, ck.LoadNotZero, ck.AvailMissing, ck.CallErrors)
	for _, v := range ck.Violations {
		p("  PROBLEM: %s", v)
	}
}
