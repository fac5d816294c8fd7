package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
)

// Entry is one provider message in the inbound log: accepted (its webhook
// was answered), not yet taken into its conversation.
type Entry struct {
	// Seq is the log's own number, in commit order per node; 0 until
	// appended.
	Seq       int64
	TenantID  string
	AccountID string
	// DedupeKey is the provider's message id, or a unique token for a
	// message without one: a retry of a message still in the log is not
	// written twice.
	DedupeKey string
	Inbound   channels.Inbound
	// Attempts counts the times a node took the entry from the log.
	Attempts   int
	ReceivedAt time.Time
	// NextAt is when any node may take the entry: the accepting node
	// leases it for itself until then.
	NextAt time.Time

	acct *channels.Account // the account, when the accepting node has it
}

// LogStore keeps the inbound log in the database. Implementations must be
// safe for concurrent use by every node: claims of different nodes never
// return the same entry while its lease runs.
type LogStore interface {
	// InboundAppend writes entries in one transaction and returns each
	// one's Seq, or 0 for an entry whose DedupeKey is already in the log
	// for its account (also within the batch: the first one is written).
	InboundAppend(ctx context.Context, entries []Entry) ([]int64, error)
	// InboundClaim leases up to limit due entries (NextAt <= now), the
	// earliest due first, until until, counting an attempt, and returns them
	// in log order (Seq).
	InboundClaim(ctx context.Context, now, until time.Time, limit int) ([]Entry, error)
	// InboundDone deletes entries whose messages are stored.
	InboundDone(ctx context.Context, seqs []int64) error
	// InboundRelease makes entries due at at, recording why (a failed
	// attempt; "" for entries handed back by a stopping node).
	InboundRelease(ctx context.Context, seqs []int64, at time.Time, reason string) error
	// InboundBacklog counts the entries in the log and returns the time
	// the oldest was received (zero when there is none).
	InboundBacklog(ctx context.Context) (n int64, oldest time.Time, err error)
}

// dedupeKey is the log's idempotency key of a message: the provider's id,
// or a token of its own for a message without one (never a duplicate).
func dedupeKey(in channels.Inbound) string {
	if in.ChannelMsgID != "" {
		return in.ChannelMsgID
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "~" + hex.EncodeToString(b[:])
}

// laneOf is the lane of the customer who sent e: one customer's messages
// are taken in the order they were accepted.
func laneOf(e Entry, lanes int) int {
	h := fnv.New32a()
	h.Write([]byte(e.TenantID))
	h.Write([]byte{0})
	h.Write([]byte(e.AccountID))
	h.Write([]byte{0})
	h.Write([]byte(e.Inbound.ExternalID))
	return int(h.Sum32() % uint32(lanes))
}

// retryDelay is the wait before another attempt at an entry that failed
// attempts times: doubling from a second, at most ten minutes.
func retryDelay(attempts int) time.Duration {
	d := time.Second
	for i := 1; i < attempts && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}
