package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/rdb"
)

// Statuses applies a provider's delivery status to the message we sent.
// Statuses for messages we don't know (sent from the provider's own app)
// are not an error.
type Statuses interface {
	ApplyStatus(ctx context.Context, acct channels.Account, st channels.StatusUpdate) error
}

// Cursors persists the read position of pull-based accounts.
type Cursors interface {
	CursorGet(ctx context.Context, tenantID, accountID string) (string, error)
	CursorSet(ctx context.Context, tenantID, accountID, cursor string) error
}

// Accounts finds the account a webhook is addressed to.
type Accounts interface {
	AccountByKey(ctx context.Context, key string) (channels.Account, error)
}

// Observer counts what the ingest did, for metrics; nil methods are fine.
type Observer interface {
	Webhook(channel, outcome string)
	Inbound(channel, outcome string)
}

// IngestOptions wire an Ingest.
type IngestOptions struct {
	Accounts Accounts
	Inbox    channels.Receiver
	Hooks    map[channels.Type]channels.Webhook
	Pullers  map[channels.Type]channels.Puller
	Statuses Statuses
	Cursors  Cursors
	// Redis serialises pulls of one account across nodes.
	Redis    *rdb.Client
	Observer Observer
	Log      *slog.Logger
}

// Ingest handles provider webhooks: verify, parse, persist, then answer.
type Ingest struct {
	o IngestOptions

	wg sync.WaitGroup // background pulls
}

// NewIngest returns an Ingest.
func NewIngest(o IngestOptions) *Ingest { return &Ingest{o: o} }

// pullLockTTL bounds how long a crashed node's pull lock blocks others.
const pullLockTTL = time.Minute

// Handle serves one webhook call addressed to the account with public key
// key. The reply is given only after every message and status the call
// carried is stored; an error leaves the provider to retry:
// errs.NotFound (no such enabled account), errs.Unauthorized (signature),
// errs.Forbidden (verify token), errs.Invalid (malformed), errs.Unavailable
// (storage failed: retry later).
func (g *Ingest) Handle(ctx context.Context, key string, req channels.WebhookRequest) (channels.WebhookReply, error) {
	const op = "inbox.Handle"
	acct, err := g.o.Accounts.AccountByKey(ctx, key)
	if err != nil {
		return channels.WebhookReply{}, errs.Wrap(op, err)
	}
	if !acct.Enabled {
		return channels.WebhookReply{}, errs.E(op, errs.NotFound, "no enabled account for this webhook")
	}
	hook := g.o.Hooks[acct.Type]
	if hook == nil {
		return channels.WebhookReply{}, errs.E(op, errs.NotFound, "channel %s has no webhook", acct.Type)
	}
	res, err := hook.Webhook(ctx, acct, req)
	if err != nil {
		g.observeWebhook(acct.Type, string(errs.CodeOf(err)))
		return channels.WebhookReply{}, errs.Wrap(op, err)
	}
	for _, in := range res.Inbound {
		if in.AccountID == "" {
			in.AccountID = acct.ID
		}
		if err := g.receive(ctx, acct, in); err != nil {
			g.observeWebhook(acct.Type, "retry")
			return channels.WebhookReply{}, errs.Wrap(op, err)
		}
	}
	if err := g.applyStatuses(ctx, acct, res.Statuses); err != nil {
		g.observeWebhook(acct.Type, "retry")
		return channels.WebhookReply{}, errs.Wrap(op, err)
	}
	if res.Pull {
		g.PullAsync(acct, res.PullToken)
	}
	g.observeWebhook(acct.Type, "ok")
	return res.Reply, nil
}

// applyStatuses records delivery outcomes; a failure to store one is
// Unavailable, so the provider retries (or the pull stops before its
// cursor moves).
func (g *Ingest) applyStatuses(ctx context.Context, acct channels.Account, sts []channels.StatusUpdate) error {
	if g.o.Statuses == nil {
		return nil
	}
	for _, st := range sts {
		if err := g.o.Statuses.ApplyStatus(ctx, acct, st); err != nil && !errs.Is(err, errs.NotFound) {
			return errs.E("", errs.Unavailable, "store delivery status: %v", err)
		}
	}
	return nil
}

// receive stores one message. A message the engine refuses as malformed is
// logged and dropped (the provider would retry it forever); a storage
// failure is returned so the provider retries the whole call.
func (g *Ingest) receive(ctx context.Context, acct channels.Account, in channels.Inbound) error {
	dup, err := g.o.Inbox.Receive(ctx, acct, in)
	switch {
	case err == nil && dup:
		g.observeInbound(acct.Type, "duplicate")
		return nil
	case err == nil:
		g.observeInbound(acct.Type, "stored")
		return nil
	case errs.Is(err, errs.Invalid), errs.Is(err, errs.TooLarge):
		g.observeInbound(acct.Type, "refused")
		g.o.Log.Warn("inbound message refused", "account", acct.ID, "channel_msg_id", in.ChannelMsgID, "err", err)
		return nil
	}
	g.observeInbound(acct.Type, "error")
	return errs.E("", errs.Unavailable, "store inbound message: %v", err)
}

func (g *Ingest) observeWebhook(t channels.Type, outcome string) {
	if g.o.Observer != nil {
		g.o.Observer.Webhook(string(t), outcome)
	}
}

func (g *Ingest) observeInbound(t channels.Type, outcome string) {
	if g.o.Observer != nil {
		g.o.Observer.Inbound(string(t), outcome)
	}
}

// PullAsync pulls an account in the background: the callback that asked
// for it is answered at once (it carries no message itself).
func (g *Ingest) PullAsync(acct channels.Account, token string) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*pullLockTTL)
		defer cancel()
		if err := g.Pull(ctx, acct, token); err != nil {
			g.o.Log.Error("pull", "account", acct.ID, "err", err)
		}
	}()
}

// Wait waits for background pulls (shutdown, tests).
func (g *Ingest) Wait() { g.wg.Wait() }

// Pull fetches an account's new messages from its persisted cursor until
// the provider has no more, storing each page before saving the cursor
// after it (at-least-once; the engine drops re-pulled messages by their
// provider id). Only one node pulls an account at a time; a pull asked for
// while another runs makes that one go round again, so nothing announced
// is left unread.
func (g *Ingest) Pull(ctx context.Context, acct channels.Account, token string) error {
	const op = "inbox.Pull"
	p := g.o.Pullers[acct.Type]
	if p == nil || g.o.Cursors == nil {
		return errs.E(op, errs.Invalid, "channel %s is not pulled", acct.Type)
	}
	lock := g.o.Redis.TenantKey(acct.TenantID, "pull", acct.ID)
	again := lock + ":again"
	owner := lockOwner()
	ok, err := g.o.Redis.SetNX(ctx, lock, owner, pullLockTTL).Result()
	if err != nil {
		return errs.E(op, errs.Unavailable, "pull lock: %v", err)
	}
	if !ok {
		// Someone else pulls: ask them to go round once more.
		if err := g.o.Redis.Set(ctx, again, token, pullLockTTL).Err(); err != nil {
			return errs.E(op, errs.Unavailable, "pull flag: %v", err)
		}
		return nil
	}
	defer releaseLock(g.o.Redis, lock, owner)
	for {
		if err := g.pullAll(ctx, p, acct, token); err != nil {
			return errs.Wrap(op, err)
		}
		tok, err := g.o.Redis.GetDel(ctx, again).Result()
		if err == redis.Nil {
			return nil
		}
		if err != nil {
			return errs.E(op, errs.Unavailable, "pull flag: %v", err)
		}
		token = tok
		g.o.Redis.Expire(ctx, lock, pullLockTTL)
	}
}

// pullAll reads pages until the provider says there are no more.
func (g *Ingest) pullAll(ctx context.Context, p channels.Puller, acct channels.Account, token string) error {
	cursor, err := g.o.Cursors.CursorGet(ctx, acct.TenantID, acct.ID)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	for page := 0; page < 1000; page++ {
		res, err := p.Pull(ctx, acct, cursor, token)
		if err != nil {
			return err
		}
		for _, in := range res.Inbound {
			if in.AccountID == "" {
				in.AccountID = acct.ID
			}
			if err := g.receive(ctx, acct, in); err != nil {
				return err
			}
		}
		if err := g.applyStatuses(ctx, acct, res.Statuses); err != nil {
			return err
		}
		if res.Next != "" && res.Next != cursor {
			if err := g.o.Cursors.CursorSet(ctx, acct.TenantID, acct.ID, res.Next); err != nil {
				return err
			}
			cursor = res.Next
		}
		if !res.HasMore {
			return nil
		}
	}
	return errs.E("", errs.Internal, "provider kept announcing more pages")
}

// lockOwner is a random token identifying one holder of a lock.
func lockOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// releaseScript deletes the lock only if we still own it.
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

func releaseLock(c *rdb.Client, key, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = releaseScript.Run(ctx, c, []string{key}, owner).Err()
}
