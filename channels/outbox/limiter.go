package outbox

import (
	"context"
	_ "embed"
	"encoding/json"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/rdb"
)

//go:embed lua/reserve.lua
var reserveLua string

var scriptReserve = redis.NewScript(reserveLua)

// Limiter paces the sends of each channel account across all nodes: one
// GCRA state per account in Redis, under the tenant's hash tag
// (rdb.TenantKey), advanced by one Lua script per send.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewLimiter returns a Limiter keeping its state under prefix (the node's
// Redis key prefix, rdb.Client.Prefix).
func NewLimiter(c redis.UniversalClient, prefix string) *Limiter {
	if prefix == "" {
		prefix = "sb"
	}
	return &Limiter{rdb: c, prefix: prefix}
}

// Rate is an account's send limit: PerSec sends a second on average, at
// most Burst of them back to back.
type Rate struct {
	PerSec float64
	Burst  int
}

// interval is the spacing of sends in microseconds, rounded up so that the
// limiter errs on the slow side.
func (r Rate) interval() int64 {
	return max(1, int64(math.Ceil(1e6/r.PerSec)))
}

// Limits of a Rate.
const (
	minRate  = 0.001 // one send in about 17 minutes
	maxRate  = 1e6
	maxBurst = 100_000
)

// RateOf is acct's send limit: AccountSettings.RatePerSec and Burst from
// acct.Settings, else the channel's DefaultRate and a burst of 1 (sends
// evenly spaced: providers count per second, and spacing never exceeds a
// per-second limit). Settings that do not parse, or values out of range,
// give the default and an error to log.
func RateOf(acct channels.Account) (Rate, error) {
	def := Rate{PerSec: acct.Type.DefaultRate(), Burst: 1}
	if len(acct.Settings) == 0 {
		return def, nil
	}
	var s channels.AccountSettings
	if err := json.Unmarshal(acct.Settings, &s); err != nil {
		return def, errs.E("outbox.RateOf", errs.Invalid, "account %s settings: %v", acct.ID, err)
	}
	r := def
	if s.RatePerSec != 0 {
		r.PerSec = s.RatePerSec
	}
	if s.Burst != 0 {
		r.Burst = s.Burst
	}
	if math.IsNaN(r.PerSec) || r.PerSec < minRate || r.PerSec > maxRate || r.Burst < 1 || r.Burst > maxBurst {
		return def, errs.E("outbox.RateOf", errs.Invalid, "account %s: rate_per_sec must be in [%g, %g] and burst in [1, %d]",
			acct.ID, minRate, maxRate, maxBurst)
	}
	return r, nil
}

// Reserve takes the next send slot of an account at rate r and returns it:
// now when the account may send at once, else the moment it may. The slot
// is taken either way; a caller that does not use it only slows the
// account down.
func (l *Limiter) Reserve(ctx context.Context, tenantID, accountID string, r Rate, now time.Time) (time.Time, error) {
	key := rdb.TenantKey(l.prefix, tenantID, "outbox", "rate", accountID)
	// The script counts whole microseconds: round now up, so that every
	// slot is on that grid and none is before now.
	nowUS := now.UnixMicro()
	if now.After(time.UnixMicro(nowUS)) {
		nowUS++
	}
	us, err := scriptReserve.Run(ctx, l.rdb, []string{key}, nowUS, r.interval(), r.Burst).Int64()
	if err != nil {
		return time.Time{}, &errs.Error{Op: "outbox.Limiter.Reserve", Code: errs.Unavailable, Msg: "reserve a send slot", Err: err}
	}
	if us < nowUS {
		return time.Time{}, errs.E("outbox.Limiter.Reserve", errs.Internal, "reserve: slot %d before now %d", us, nowUS)
	}
	return time.UnixMicro(us).UTC(), nil
}
