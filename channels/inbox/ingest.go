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

// Accounts finds the account a webhook is addressed to, and the account of
// an entry taken from the inbound log.
type Accounts interface {
	AccountByKey(ctx context.Context, key string) (channels.Account, error)
	AccountGet(ctx context.Context, tenantID, id string) (channels.Account, error)
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
	// InboundLog (required) is where webhooks' messages are persisted
	// before the provider is answered; they are taken into their
	// conversations right after, by a Pipeline tuned by Pipeline (Store and
	// Process are set here).
	InboundLog LogStore
	Pipeline   PipelineOptions
	// AccountTTL is how long a node keeps an account it looked up for a
	// webhook (default 2 s; negative: not kept). A change made on another
	// node (a new app secret, a disabled account) applies to this node's
	// webhooks within it.
	AccountTTL time.Duration
}

// cachedAccount is an account looked up by its webhook key.
type cachedAccount struct {
	acct    channels.Account
	expires time.Time
}

// Ingest handles provider webhooks: verify, parse, persist, then answer.
type Ingest struct {
	o    IngestOptions
	pipe *Pipeline

	accounts sync.Map // webhook key, or NUL tenant NUL id → cachedAccount

	wg sync.WaitGroup // background pulls
}

// NewIngest returns an Ingest; Start runs its pipeline.
func NewIngest(o IngestOptions) *Ingest {
	if o.AccountTTL == 0 {
		o.AccountTTL = 2 * time.Second
	}
	g := &Ingest{o: o}
	po := o.Pipeline
	po.Store, po.Process = o.InboundLog, g.process
	if po.Log == nil {
		po.Log = o.Log
	}
	g.pipe = NewPipeline(po)
	return g
}

// Start runs the inbound pipeline.
func (g *Ingest) Start() { g.pipe.Start() }

// Stop stops the inbound pipeline (after the HTTP server stopped taking
// webhooks), handing back what it holds, and waits for background pulls.
func (g *Ingest) Stop(ctx context.Context) error {
	err := g.pipe.Stop(ctx)
	g.wg.Wait()
	return err
}

// Pipeline is the inbound pipeline.
func (g *Ingest) Pipeline() *Pipeline { return g.pipe }

// pullLockTTL bounds how long a crashed node's pull lock blocks others.
const pullLockTTL = time.Minute

// Handle serves one webhook call addressed to the account with public key
// key. The reply is given only after every message the call carried is
// durable in the inbound log and every status is applied; an error leaves the provider to retry:
// errs.NotFound (no such enabled account), errs.Unauthorized (signature),
// errs.Forbidden (verify token), errs.Invalid (malformed), errs.Unavailable
// (storage failed: retry later).
func (g *Ingest) Handle(ctx context.Context, key string, req channels.WebhookRequest) (channels.WebhookReply, error) {
	const op = "inbox.Handle"
	acct, err := g.accountByKey(ctx, key)
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
	if err := g.accept(ctx, acct, res.Inbound); err != nil {
		g.observeWebhook(acct.Type, "retry")
		return channels.WebhookReply{}, errs.Wrap(op, err)
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

// accountByKey finds a webhook's account, kept for AccountTTL: every
// provider call would otherwise cost a query. Unknown keys are not kept
// (anyone may post any key).
func (g *Ingest) accountByKey(ctx context.Context, key string) (channels.Account, error) {
	return g.cachedAccount(key, func() (channels.Account, error) { return g.o.Accounts.AccountByKey(ctx, key) })
}

// accountByID finds the account of an entry taken from the log, kept the
// same way.
func (g *Ingest) accountByID(ctx context.Context, tenantID, id string) (channels.Account, error) {
	// NUL never occurs in a webhook key (they are URL-safe).
	return g.cachedAccount("\x00"+tenantID+"\x00"+id, func() (channels.Account, error) { return g.o.Accounts.AccountGet(ctx, tenantID, id) })
}

// cachedAccount returns the account kept under key, or loads and keeps it.
func (g *Ingest) cachedAccount(key string, load func() (channels.Account, error)) (channels.Account, error) {
	if g.o.AccountTTL < 0 {
		return load()
	}
	now := time.Now()
	if v, ok := g.accounts.Load(key); ok {
		if c := v.(cachedAccount); now.Before(c.expires) {
			return c.acct, nil
		}
	}
	acct, err := load()
	if err == nil {
		g.accounts.Store(key, cachedAccount{acct: acct, expires: now.Add(g.o.AccountTTL)})
	}
	return acct, err
}

// accept appends a webhook's messages to the inbound log; the pipeline
// takes them into their conversations.
func (g *Ingest) accept(ctx context.Context, acct channels.Account, ins []channels.Inbound) error {
	if len(ins) == 0 {
		return nil
	}
	entries := make([]Entry, len(ins))
	for i, in := range ins {
		in.AccountID = acct.ID
		entries[i] = Entry{TenantID: acct.TenantID, AccountID: acct.ID, DedupeKey: in.ChannelMsgID, Inbound: in}
	}
	fresh, err := g.pipe.Append(ctx, acct, entries)
	if err != nil {
		return err
	}
	for _, ok := range fresh {
		if !ok {
			// A provider's retry of a message still in the log.
			g.observeInbound(acct.Type, "duplicate")
		}
	}
	return nil
}

// process takes one entry of the inbound log into its conversation
// (Pipeline's Process): an error is a storage failure, retried later.
func (g *Ingest) process(ctx context.Context, e Entry) error {
	var acct channels.Account
	if e.acct != nil {
		acct = *e.acct
	} else {
		a, err := g.accountByID(ctx, e.TenantID, e.AccountID)
		if errs.Is(err, errs.NotFound) {
			g.observeInbound(channels.Type(""), "refused")
			g.o.Log.Warn("inbound message of a deleted account dropped", "account", e.AccountID, "channel_msg_id", e.Inbound.ChannelMsgID)
			return nil
		}
		if err != nil {
			return err
		}
		acct = a
	}
	return g.receive(ctx, acct, e.Inbound)
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

// Wait waits for background pulls (tests).
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
