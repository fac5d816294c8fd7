package acdredis

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// One Lua file per operation, each opening with its ARGV/Returns contract.
// They make one Lua program, routeProgram: lua/lib.lua (the shared
// matching code and the key layout), then every operation as a function of
// its own ARGV, then route(KEYS, ARGV) with lua/dispatch.lua as its body,
// which runs a list of operations of one tenant in order. One program for
// all lets the batcher send many operations in one call (batch.go), which
// pays the fixed cost of a call once for all of them.
//
// The program reaches Redis in two forms (router.go): as a function
// library (routeLibrary, Redis 7.0 and later), loaded once per server and
// called with FCALL, so a call runs route alone; and as a script
// (scriptRoute, for servers without functions, such as the embedded
// miniredis), where every call runs the whole program first (defining
// lib's functions: on Redis 7.0, some 100,000 instructions, as much as
// two matches), then route. redis.Script runs EVALSHA and falls back to
// EVAL once per server, so the source crosses the wire only on first use.
var (
	//go:embed lua/lib.lua
	libLua string
	//go:embed lua/dispatch.lua
	dispatchLua string

	//go:embed lua/configure.lua
	configureLua string
	//go:embed lua/enqueue.lua
	enqueueLua string
	//go:embed lua/remove.lua
	removeLua string
	//go:embed lua/agent_ready.lua
	agentReadyLua string
	//go:embed lua/agent_not_ready.lua
	agentNotReadyLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/missed.lua
	missedLua string
	//go:embed lua/match_group.lua
	matchGroupLua string
	//go:embed lua/match_agent.lua
	matchAgentLua string
	//go:embed lua/stats.lua
	statsLua string
)

// operation names an operation of scriptRoute (its file name without .lua).
type operation string

const (
	opConfigure     operation = "configure"
	opEnqueue       operation = "enqueue"
	opRemove        operation = "remove"
	opAgentReady    operation = "agent_ready"
	opAgentNotReady operation = "agent_not_ready"
	opRelease       operation = "release"
	opClaim         operation = "claim"
	opMissed        operation = "missed"
	opMatchGroup    operation = "match_group"
	opMatchAgent    operation = "match_agent"
	opStats         operation = "stats"
)

// routeOps are the operation files.
var routeOps = map[operation]string{
	opConfigure: configureLua, opEnqueue: enqueueLua, opRemove: removeLua,
	opAgentReady: agentReadyLua, opAgentNotReady: agentNotReadyLua,
	opRelease: releaseLua, opClaim: claimLua, opMissed: missedLua,
	opMatchGroup: matchGroupLua, opMatchAgent: matchAgentLua, opStats: statsLua,
}

// scriptRoute is the program as a script. As a script it defines only
// the operations the call runs: every call runs the whole program, and
// creating a function (a closure over lib's locals) is a large part of
// that.
var scriptRoute = redis.NewScript(routeSource(routeOps, true) + "return route(KEYS, ARGV)\n")

// routeProgram is the program as a function library defines it: with every
// operation.
var routeProgram = routeSource(routeOps, false)

// functionName names the function library and its one function, route.
// It carries a hash of the program, so that nodes running different
// versions (during a rolling upgrade) each call their own; a version's
// library stays loaded after the last node running it is gone (a few
// tens of kilobytes; FUNCTION DELETE removes it).
var functionName = "switchboard_route_" + programHash(routeProgram)

// routeLibrary is the program as a function library.
var routeLibrary = "#!lua name=" + functionName + "\n" + routeProgram +
	"redis.register_function('" + functionName + "', route)\n"

func programHash(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:8])
}

// routeSource assembles the program; with used, it defines only the
// operations its ARGV names (dispatch.lua's layout). Package-level var
// initialisers run in dependency order, so the embedded files are set by
// the time this runs. The operations are defined in a fixed order so that
// every node computes the same program (and hash).
func routeSource(ops map[operation]string, used bool) string {
	var b strings.Builder
	b.WriteString(libLua)
	b.WriteString("\nlocal OPS = {}\n")
	if used {
		b.WriteString("local USED = {}\n" +
			"do\n  local i = 2\n  while i <= #ARGV do\n    USED[ARGV[i]] = true\n" +
			"    i = i + 3 + (tonumber(ARGV[i + 2]) or 0)\n  end\nend\n")
	}
	for _, name := range []operation{opConfigure, opEnqueue, opRemove, opAgentReady, opAgentNotReady,
		opRelease, opClaim, opMissed, opMatchGroup, opMatchAgent, opStats} {
		if used {
			fmt.Fprintf(&b, "if USED[%q] then\n", name)
		}
		fmt.Fprintf(&b, "OPS[%q] = function(ARGV)\n%s\nend\n", name, ops[name])
		if used {
			b.WriteString("end\n")
		}
	}
	b.WriteString("local function route(KEYS, ARGV)\n")
	b.WriteString(dispatchLua)
	b.WriteString("end\n")
	return b.String()
}

// Result codes the operations return; each file's header lists its own.
const (
	codeAdded        = 1
	codeUnknownAgent = 3
	codeFull         = 4
)

// scriptError is the error that ended one operation of a call (a bug in
// the program, or a command Redis refused). It is a redis.Error, so
// redisErr classes it as internal.
type scriptError string

func (e scriptError) Error() string { return "routing script: " + string(e) }

// RedisError marks scriptError as an error reply (redis.Error).
func (scriptError) RedisError() {}

// reply is a decoded {code, a, b, assignments...} script result.
type reply struct {
	code, a, b int64
	matches    []scriptMatch
}

// scriptMatch is one assignment as the scripts return it.
type scriptMatch struct {
	session, group, agent, enqueuedMs string
	cost                              int64
}

// parseReply decodes {code, a, b, session, group, agent, ms, cost, ...}.
func parseReply(res any) (reply, error) {
	arr, ok := res.([]any)
	if !ok || len(arr) < 3 || (len(arr)-3)%5 != 0 {
		return reply{}, fmt.Errorf("unexpected script reply %#v", res)
	}
	var r reply
	for i, p := range []*int64{&r.code, &r.a, &r.b} {
		if *p, ok = arr[i].(int64); !ok {
			return reply{}, fmt.Errorf("unexpected script reply element %#v", arr[i])
		}
	}
	r.matches = make([]scriptMatch, 0, (len(arr)-3)/5)
	for i := 3; i < len(arr); i += 5 {
		var f [4]string
		for j := range f {
			if f[j], ok = arr[i+j].(string); !ok {
				return reply{}, fmt.Errorf("unexpected script reply element %#v", arr[i+j])
			}
		}
		cost, ok := arr[i+4].(int64)
		if !ok {
			return reply{}, fmt.Errorf("unexpected script reply element %#v", arr[i+4])
		}
		r.matches = append(r.matches, scriptMatch{session: f[0], group: f[1], agent: f[2], enqueuedMs: f[3], cost: cost})
	}
	return r, nil
}
