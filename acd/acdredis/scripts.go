package acdredis

import (
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// One script per operation; each file opens with its ARGV/Returns
// contract, and lua/lib.lua, which holds the shared matching code and the
// key layout, is prepended to every one. redis.Script runs EVALSHA and
// falls back to EVAL once per server, so the source crosses the wire only
// on first use.
var (
	//go:embed lua/lib.lua
	libLua string

	//go:embed lua/configure.lua
	configureLua    string
	scriptConfigure = newScript(configureLua)

	//go:embed lua/enqueue.lua
	enqueueLua    string
	scriptEnqueue = newScript(enqueueLua)

	//go:embed lua/remove.lua
	removeLua    string
	scriptRemove = newScript(removeLua)

	//go:embed lua/agent_ready.lua
	agentReadyLua    string
	scriptAgentReady = newScript(agentReadyLua)

	//go:embed lua/agent_not_ready.lua
	agentNotReadyLua    string
	scriptAgentNotReady = newScript(agentNotReadyLua)

	//go:embed lua/release.lua
	releaseLua    string
	scriptRelease = newScript(releaseLua)

	//go:embed lua/claim.lua
	claimLua    string
	scriptClaim = newScript(claimLua)

	//go:embed lua/missed.lua
	missedLua    string
	scriptMissed = newScript(missedLua)

	//go:embed lua/match_group.lua
	matchGroupLua    string
	scriptMatchGroup = newScript(matchGroupLua)

	//go:embed lua/match_agent.lua
	matchAgentLua    string
	scriptMatchAgent = newScript(matchAgentLua)

	//go:embed lua/stats.lua
	statsLua    string
	scriptStats = newScript(statsLua)
)

// newScript builds a script as lib + body. Package-level var initialisers
// run in dependency order, so libLua is set by the time this runs.
func newScript(body string) *redis.Script {
	return redis.NewScript(libLua + "\n" + body)
}

// Result codes the scripts return; each script's header lists its own.
const (
	codeAdded        = 1
	codeUnknownAgent = 3
	codeFull         = 4
)

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
