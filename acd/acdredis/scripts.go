package acdredis

import (
	_ "embed"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// One script per operation; each file opens with its KEYS/ARGV/Returns
// contract. redis.Script runs EVALSHA and falls back to EVAL once per
// server, so the source crosses the wire only on first use.
var (
	//go:embed lua/enqueue.lua
	enqueueLua    string
	scriptEnqueue = redis.NewScript(enqueueLua)

	//go:embed lua/remove.lua
	removeLua    string
	scriptRemove = redis.NewScript(removeLua)

	//go:embed lua/agent_ready.lua
	agentReadyLua    string
	scriptAgentReady = redis.NewScript(agentReadyLua)

	//go:embed lua/agent_not_ready.lua
	agentNotReadyLua    string
	scriptAgentNotReady = redis.NewScript(agentNotReadyLua)

	//go:embed lua/release.lua
	releaseLua    string
	scriptRelease = redis.NewScript(releaseLua)

	//go:embed lua/claim.lua
	claimLua    string
	scriptClaim = redis.NewScript(claimLua)

	//go:embed lua/match_group.lua
	matchGroupLua    string
	scriptMatchGroup = redis.NewScript(matchGroupLua)

	//go:embed lua/match_agent.lua
	matchAgentLua    string
	scriptMatchAgent = redis.NewScript(matchAgentLua)
)

// Result codes the scripts return; each script's header lists the ones it
// can return.
const (
	codeOK            = 0
	codeMoreAgents    = 1
	codeGroupsChanged = 2
	codeUnknownAgent  = 3
)

// ErrUnknownAgent reports an agent that routing holds no state for: never
// made ready since the last Reset, or lost with Redis. It carries
// errs.NotFound, so callers can tell it from a failure and rebuild the
// agent's state with AgentReady.
var ErrUnknownAgent = &errs.Error{Op: "acdredis", Code: errs.NotFound, Msg: "agent unknown to routing"}

// Internal outcomes that the Go side answers by calling the script again.
var (
	// errMoreAgents: match_group.lua reached an available agent whose hash
	// was not passed in KEYS.
	errMoreAgents = errors.New("available agent outside the candidates")
	// errGroupsChanged: the agent's groups changed between reading them and
	// running the script, so the KEYS were built from stale groups.
	errGroupsChanged = errors.New("agent groups changed")
)

// codeErr maps a script result code to an error: nil for success, a typed
// error otherwise, and a failure for a code no script should return.
func codeErr(code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeMoreAgents:
		return errMoreAgents
	case codeGroupsChanged:
		return errGroupsChanged
	case codeUnknownAgent:
		return ErrUnknownAgent
	default:
		return fmt.Errorf("unexpected script result code %d", code)
	}
}

// scriptMatch is one assignment as the match scripts return it: the session,
// the other side (the agent for match_group, the group for match_agent), the
// enqueue time in unix ms ("" when unknown) and the waiting score.
type scriptMatch struct {
	session, other, enqueuedMs, score string
}

// parseMatches decodes {code, session, other, ms, score, ...}.
func parseMatches(res any) (int64, []scriptMatch, error) {
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 || (len(arr)-1)%4 != 0 {
		return 0, nil, fmt.Errorf("unexpected script reply %#v", res)
	}
	code, ok := arr[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("unexpected script result code %#v", arr[0])
	}
	ms := make([]scriptMatch, 0, (len(arr)-1)/4)
	for i := 1; i < len(arr); i += 4 {
		var f [4]string
		for j := range f {
			s, ok := arr[i+j].(string)
			if !ok {
				return 0, nil, fmt.Errorf("unexpected script reply element %#v", arr[i+j])
			}
			f[j] = s
		}
		ms = append(ms, scriptMatch{session: f[0], other: f[1], enqueuedMs: f[2], score: f[3]})
	}
	return code, ms, nil
}
