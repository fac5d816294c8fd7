package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/inbox"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/channels/sms"
	"github.com/switchboard-acd/switchboard/channels/wechat"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/wxtoken"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// providers are the messaging channels reached through a provider's API.
type providers struct {
	whatsapp *whatsapp.Adapter
	wechat   *wechat.Adapter
	wecom    *wecomkf.Adapter
	sms      *sms.Adapter
}

func newProviders(a *App, clk clock.Clock, log *slog.Logger) providers {
	tokens := wxtoken.New(a.Redis, a.Redis.Prefix, clk, log)
	return providers{
		whatsapp: whatsapp.New(whatsapp.Options{Logger: log, Clock: clk}),
		wechat:   wechat.New(tokens, wechat.Options{Logger: log, Clock: clk}),
		wecom:    wecomkf.New(tokens, wecomkf.Options{Logger: log, Clock: clk}),
		sms:      sms.New(sms.Options{Logger: log, Clock: clk}),
	}
}

// validators check each provider's credentials when an account is saved.
func (p providers) validators() channels.CredentialValidators {
	return channels.CredentialValidators{
		channels.WhatsApp: whatsapp.ValidateCredentials,
		channels.WeChatOA: wechat.ValidateCredentials,
		channels.WeComKF:  wecomkf.ValidateCredentials,
		channels.SMS:      sms.ValidateCredentials,
	}
}

func (p providers) hooks() map[channels.Type]channels.Webhook {
	return map[channels.Type]channels.Webhook{
		channels.WhatsApp: p.whatsapp, channels.WeChatOA: p.wechat, channels.WeComKF: p.wecom, channels.SMS: p.sms,
	}
}

func (p providers) senders() map[channels.Type]channels.Sender {
	return map[channels.Type]channels.Sender{
		channels.WhatsApp: p.whatsapp, channels.WeChatOA: p.wechat, channels.WeComKF: p.wecom, channels.SMS: p.sms,
	}
}

// channelRuntime is what a node runs for provider channels: the outbox
// worker that sends, and the ingest that takes webhooks and pulls.
type channelRuntime struct {
	worker *outbox.Worker
	ingest *inbox.Ingest
}

// newChannelRuntime wires the outbox and the ingest to the engine.
func newChannelRuntime(a *App, p providers, accounts *channelsql.Store, facts inbox.Facts, phones outbox.Phones, reg prometheus.Registerer, clk clock.Clock, log *slog.Logger) (*channelRuntime, error) {
	store := outbox.NewStore(a.DB)
	om, err := outbox.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(outbox.NewCollector(store, clk, log)); err != nil {
		return nil, err
	}
	worker, err := outbox.NewWorker(outbox.Options{
		Store: store, Accounts: accounts, Senders: p.senders(),
		Redis: a.Redis, RedisPrefix: a.Redis.Prefix, Phones: phones,
		Sink: deliverySink{engine: a.Engine, log: log}, Metrics: om,
		Clock: clk, Log: log, NodeID: a.Cfg.NodeID,
	})
	if err != nil {
		return nil, err
	}
	a.Engine.OnQueued = worker.Notify
	im, err := newIngestMetrics(reg)
	if err != nil {
		return nil, err
	}
	ingest := inbox.NewIngest(inbox.IngestOptions{
		Accounts: accounts,
		Inbox:    inbox.New(a.Engine, facts, log),
		Hooks:    p.hooks(),
		Pullers:  map[channels.Type]channels.Puller{channels.WeComKF: p.wecom},
		Statuses: statusApplier{outbox: store, engine: a.Engine, clock: clk},
		Cursors:  accounts,
		Redis:    a.Redis,
		Observer: im,
		Log:      log,
		// Webhooks are answered once their messages are in the inbound
		// log; this node then takes them into their conversations.
		InboundLog: accounts,
		Pipeline:   inbox.PipelineOptions{Lanes: a.Cfg.InboundWorkers, Committers: committers(a.DB.Dialect), Clock: clk},
	})
	if err := reg.Register(inboundCollector{log: accounts, pipe: ingest.Pipeline(), clock: clk, logger: log}); err != nil {
		return nil, err
	}
	return &channelRuntime{worker: worker, ingest: ingest}, nil
}

// deliverySink turns the outbox's outcomes into message delivery statuses
// the agent sees.
type deliverySink struct {
	engine *session.Engine
	log    *slog.Logger
}

var _ outbox.Sink = deliverySink{}

// Sent implements outbox.Sink.
func (d deliverySink) Sent(ctx context.Context, it outbox.Item, channelMsgID string) {
	if err := d.engine.DeliveryUpdate(ctx, it.TenantID, it.MessageID, session.StatusSent, "", channelMsgID); err != nil {
		d.log.Warn("record sent message", "message", it.MessageID, "err", err)
	}
}

// Failed implements outbox.Sink: only a dead letter is a failure for the
// agent; a retry or an SMS fallback is still on its way.
func (d deliverySink) Failed(ctx context.Context, it outbox.Item, code, reason string, final bool) {
	if !final {
		return
	}
	text := reason
	if code != "" {
		text = code + ": " + reason
	}
	if err := d.engine.DeliveryUpdate(ctx, it.TenantID, it.MessageID, session.StatusFailed, text, ""); err != nil {
		d.log.Warn("record failed message", "message", it.MessageID, "err", err)
	}
}

// statusApplier applies provider delivery callbacks to our messages,
// found through the outbox row that sent them.
type statusApplier struct {
	outbox *outbox.Store
	engine *session.Engine
	clock  clock.Clock
}

// statusRace is how long after a callback's own time an unknown message id
// is taken for a send whose outcome is not committed yet (the provider's
// "sent" can overtake our own record of the send): the webhook is refused
// so the provider retries it, instead of the status being lost.
const statusRace = time.Minute

// ApplyStatus implements inbox.Statuses.
func (s statusApplier) ApplyStatus(ctx context.Context, acct channels.Account, st channels.StatusUpdate) error {
	it, err := s.outbox.ByChannelMsgID(ctx, acct.TenantID, acct.ID, st.ChannelMsgID)
	if errs.Is(err, errs.NotFound) {
		if !st.At.IsZero() && s.clock.Now().Sub(st.At) < statusRace {
			return errs.E("apply status", errs.Unavailable, "message %s not recorded as sent yet", st.ChannelMsgID)
		}
		return nil // not one of ours (sent from the provider's own app, or purged)
	}
	if err != nil {
		return err
	}
	var status session.DeliveryStatus
	switch st.Status {
	case channels.StatusSent:
		status = session.StatusSent
	case channels.StatusDelivered:
		status = session.StatusDelivered
	case channels.StatusRead:
		status = session.StatusRead
	case channels.StatusFailed:
		status = session.StatusFailed
	default:
		return nil
	}
	text := st.Error
	if st.Code != "" {
		text = st.Code + ": " + st.Error
	}
	err = s.engine.DeliveryUpdate(ctx, it.TenantID, it.MessageID, status, text, "")
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// identityFacts records each inbound message's identity facts (UnionID,
// verified phone, name, time: the customer-service window) through the
// contacts service, which also applies the tenant's auto-merge setting.
type identityFacts struct{ contacts *session.Contacts }

// IdentityTouch implements inbox.Facts.
func (f identityFacts) IdentityTouch(ctx context.Context, acct channels.Account, in channels.Inbound) (bool, error) {
	at := in.ReceivedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	obs, err := f.contacts.Observe(ctx, acct.TenantID, acct.ID, in.ExternalID, session.IdentityFacts{
		Channel: string(acct.Type), UnionID: in.UnionID, Phone: in.Phone,
		// WhatsApp's wa_id and an SMS sender are numbers the network vouches for.
		PhoneVerified: in.Phone != "" && (acct.Type == channels.WhatsApp || acct.Type == channels.SMS),
		DisplayName:   in.DisplayName, InboundAt: at,
	})
	if err != nil {
		return false, err
	}
	return len(obs.Merges) > 0, nil
}

// fallbackPhones finds the number an SMS fallback goes to: the phone of
// the conversation's contact, verified numbers first.
type fallbackPhones struct{ store session.Store }

// FallbackTarget implements outbox.Phones.
func (p fallbackPhones) FallbackTarget(ctx context.Context, tenantID, conversationID string) (string, bool, error) {
	conv, err := p.store.ConversationGet(ctx, tenantID, conversationID)
	if err != nil {
		return "", false, err
	}
	ids, err := p.store.ContactIdentities(ctx, tenantID, conv.ContactID)
	if err != nil {
		return "", false, err
	}
	phone := ""
	for _, id := range ids {
		if id.Phone == "" {
			continue
		}
		if id.PhoneVerified {
			return id.Phone, true, nil
		}
		if phone == "" {
			phone = id.Phone
		}
	}
	return phone, phone != "", nil
}

// wecomStates keeps a WeCom customer-service customer's service state in
// step with our session: when a session starts, the customer is moved to
// "smart assistant" (1), the state in which WeCom lets the API write. Our
// agents answer through the API too, so queueing and the human phase stay
// in state 1 on WeCom's side (see wecomkf.StateForSession, ReceptionAPI);
// handing customers to WeCom's own servicers is not offered.
type wecomStates struct {
	adapter  *wecomkf.Adapter
	accounts channels.AccountStore
	store    session.Store
	log      *slog.Logger
	slots    chan struct{} // bounds the calls in flight
}

var _ session.Notifier = (*wecomStates)(nil)

func newWeComStates(adapter *wecomkf.Adapter, accounts channels.AccountStore, store session.Store, log *slog.Logger) *wecomStates {
	return &wecomStates{adapter: adapter, accounts: accounts, store: store, log: log, slots: make(chan struct{}, 8)}
}

// SessionChanged implements session.Notifier.
func (w *wecomStates) SessionChanged(_ context.Context, s session.Session, ev session.Event, _ string) {
	if s.Channel != string(channels.WeComKF) || ev != session.EvCreated {
		return
	}
	select {
	case w.slots <- struct{}{}:
	default:
		w.log.Warn("wecom service state: too many calls in flight, skipped", "session", s.ID)
		return
	}
	go func() {
		defer func() { <-w.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := w.sync(ctx, s); err != nil {
			w.log.Warn("wecom service state", "session", s.ID, "err", err)
		}
	}()
}

func (w *wecomStates) sync(ctx context.Context, s session.Session) error {
	state, err := wecomkf.StateForSession(string(s.State), wecomkf.ReceptionAPI)
	if err != nil {
		return err
	}
	acct, err := w.accounts.AccountGet(ctx, s.TenantID, s.AccountID)
	if err != nil {
		return err
	}
	ids, err := w.store.ContactIdentities(ctx, s.TenantID, s.ContactID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id.AccountID != s.AccountID {
			continue
		}
		err := w.adapter.SetState(ctx, acct, id.ExternalID, state, "")
		if errs.Is(err, errs.Conflict) {
			continue // already there, or a move WeCom does not allow from where the customer is
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// The other notifications are not WeCom's business.

// SessionAssigned implements session.Notifier.
func (w *wecomStates) SessionAssigned(context.Context, session.Session, []session.Message) {}

// MessageCreated implements session.Notifier.
func (w *wecomStates) MessageCreated(context.Context, session.Session, session.Message) {}

// MessageUpdated implements session.Notifier.
func (w *wecomStates) MessageUpdated(context.Context, session.Session, session.Message) {}

// Typing implements session.Notifier.
func (w *wecomStates) Typing(context.Context, session.Session, session.SenderKind, bool) {}

// Read implements session.Notifier.
func (w *wecomStates) Read(context.Context, session.Session, session.SenderKind, int64) {}

// committers is the number of inbound-log commits a node keeps in flight:
// two on PostgreSQL (one waits for its fsync while the next batch gathers;
// more make smaller batches: 4,126 accepted POSTs/s with two, 3,463 with
// four, 3,308 with one, docs/benchmarks.md), one on SQLite, which has a
// single writer.
func committers(d db.Dialect) int {
	if d == db.SQLite {
		return 1
	}
	return 2
}

// inboundCollector reports the inbound log's backlog at scrape time.
type inboundCollector struct {
	log    inbox.LogStore
	pipe   *inbox.Pipeline
	clock  clock.Clock
	logger *slog.Logger
}

var (
	inboundBacklogDesc = prometheus.NewDesc("switchboard_inbound_backlog",
		"Provider messages accepted (their webhooks answered) and not yet stored in their conversations, all nodes.", nil, nil)
	inboundOldestDesc = prometheus.NewDesc("switchboard_inbound_oldest_seconds",
		"Age of the oldest message in the inbound log (0 when empty).", nil, nil)
	inboundHeldDesc = prometheus.NewDesc("switchboard_inbound_held",
		"Inbound-log entries this node holds in memory, waiting for their lane.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c inboundCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inboundBacklogDesc
	ch <- inboundOldestDesc
	ch <- inboundHeldDesc
}

// Collect implements prometheus.Collector.
func (c inboundCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(inboundHeldDesc, prometheus.GaugeValue, float64(c.pipe.Held()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.log.InboundBacklog(ctx)
	if err != nil {
		c.logger.Warn("metrics: inbound backlog", "err", err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(c.clock.Now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(inboundBacklogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(inboundOldestDesc, prometheus.GaugeValue, age)
}

// ingestMetrics counts webhook calls and inbound messages.
type ingestMetrics struct {
	webhooks, inbound *prometheus.CounterVec
}

var _ inbox.Observer = (*ingestMetrics)(nil)

func newIngestMetrics(reg prometheus.Registerer) (*ingestMetrics, error) {
	m := &ingestMetrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhooks_total",
			Help: "Provider webhook calls by channel and outcome (ok; retry: storage failed, the provider will retry; or the refusing error code).",
		}, []string{"channel", "outcome"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_inbound_messages_total",
			Help: "Inbound provider messages by channel and outcome (stored, duplicate, refused, error).",
		}, []string{"channel", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.webhooks, m.inbound} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Webhook implements inbox.Observer.
func (m *ingestMetrics) Webhook(channel, outcome string) {
	m.webhooks.WithLabelValues(channel, outcome).Inc()
}

// Inbound implements inbox.Observer.
func (m *ingestMetrics) Inbound(channel, outcome string) {
	m.inbound.WithLabelValues(channel, outcome).Inc()
}

// pullInterval is how often every pull-based account is read even without
// a callback: a callback lost on the way (provider outage, our outage)
// delays messages by at most this much.
const pullInterval = 2 * time.Minute

// pullLoop reads every enabled pull-based account of every tenant each
// interval. Pulls of one account are serialised across nodes, so every
// node may run it.
func (a *App) pullLoop(ctx context.Context, accounts *channelsql.Store, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	enabled := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ts, err := a.agentDB.TenantList(ctx)
		if err != nil {
			a.Log.Warn("timed pulls: list tenants", "err", err)
			continue
		}
		for _, tn := range ts {
			as, err := accounts.AccountListFiltered(ctx, tn.ID, channels.AccountFilter{Enabled: &enabled, Type: channels.WeComKF})
			if err != nil {
				a.Log.Warn("timed pulls: list accounts", "tenant", tn.ID, "err", err)
				continue
			}
			for _, acct := range as {
				if err := a.channels.ingest.Pull(ctx, acct, ""); err != nil {
					a.Log.Warn("timed pull", "account", acct.ID, "err", err)
				}
			}
		}
	}
}

// WaitPulls waits for the background pulls started by webhooks (tests).
func (a *App) WaitPulls() { a.channels.ingest.Wait() }

// WaitInbound waits until every provider message accepted so far is stored
// in its conversation: the inbound log is empty and this node holds
// nothing (tests, benchmarks).
func (a *App) WaitInbound(ctx context.Context) error {
	pipe := a.channels.ingest.Pipeline()
	for {
		n, _, err := a.accounts.InboundBacklog(ctx)
		if err != nil {
			return err
		}
		if n == 0 && pipe.Held() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
