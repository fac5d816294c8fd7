package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// process takes one claimed row to its next state: wait for the account's
// rate-limit slot, send, and record the outcome. ctx is cancelled only when
// a stop runs out of time; stopping closes when a stop begins.
func (w *Worker) process(ctx context.Context, stopping <-chan struct{}, it Item) {
	defer func() {
		<-w.sem
		w.held.Done()
		select {
		case w.freed <- struct{}{}:
		default:
		}
	}()
	// Recording an outcome must survive the cancellation of a stop that ran
	// out of time: a send that happened is recorded either way.
	settle := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	}
	log := w.o.Log.With("outbox_id", it.ID, "tenant", it.TenantID, "account", it.AccountID, "message", it.MessageID)

	acct, err := w.account(ctx, it.TenantID, it.AccountID)
	if err != nil {
		sctx, cancel := settle()
		defer cancel()
		if errs.Is(err, errs.NotFound) {
			w.dead(sctx, log, it, "unknown", DeadNoAccount, "no_account", "the account no longer exists")
			return
		}
		// The database, or the account's credentials that do not open:
		// retried like a provider failure, so that it ends at MaxAge.
		log.Warn("outbox: account lookup failed", "err", err)
		now := w.o.Clock.Now()
		delay := max(retryUnavailable, backoff(it.Attempts, w.o.BackoffBase, w.o.BackoffCap, rand.Float64()))
		w.retry(sctx, log, it, "unknown", now, now.Add(delay), failure{kind: failRetry, code: "account_error", reason: err.Error()})
		return
	}
	if !acct.Enabled {
		// A disabled account keeps its outbox waiting (channels.Account).
		sctx, cancel := settle()
		defer cancel()
		w.deferRow(sctx, log, it, w.o.Clock.Now().Add(w.o.DisabledRecheck), false)
		return
	}
	channel := string(acct.Type)
	sender := w.o.Senders[acct.Type]
	if sender == nil {
		sctx, cancel := settle()
		defer cancel()
		w.dead(sctx, log, it, channel, DeadNoSender, "no_sender", fmt.Sprintf("no sender for channel %q", acct.Type))
		return
	}

	if !w.waitForSlot(ctx, stopping, log, it, acct) {
		return
	}

	sendCtx, cancelSend := context.WithTimeout(ctx, w.o.SendTimeout)
	start := w.o.Clock.Now()
	res, err := sender.Send(sendCtx, acct, it.Out)
	cancelSend()
	now := w.o.Clock.Now()
	w.o.Metrics.observeSend(channel, now.Sub(start), err == nil)

	sctx, cancel := settle()
	defer cancel()
	if err == nil {
		w.sent(sctx, log, it, channel, res.ChannelMsgID, now)
		return
	}
	if ctx.Err() != nil {
		// A stop cancelled the send: not the provider's fault. Another node
		// (or this one after a restart) tries again at once.
		w.retry(sctx, log, it, channel, now, now, failure{kind: failRetry, code: "interrupted", reason: "worker stopped during the send"})
		return
	}
	f := classify(err)
	switch f.kind {
	case failRetry, failAuth:
		delay := backoff(it.Attempts, w.o.BackoffBase, w.o.BackoffCap, rand.Float64())
		delay = max(delay, f.after)
		if f.kind == failAuth {
			delay = max(delay, w.o.AuthRetry)
		}
		w.retry(sctx, log, it, channel, now, now.Add(delay), f)
	default:
		w.fallbackOrDie(sctx, log, it, acct, now, f)
	}
}

// waitForSlot gets the row its rate-limit slot: it sends at once, waits up
// to maxHold, or goes back to the table until a later slot. It reports
// whether the row is to be sent now.
func (w *Worker) waitForSlot(ctx context.Context, stopping <-chan struct{}, log warner, it Item, acct channels.Account) bool {
	now := w.o.Clock.Now()
	slot, reserved := now, false
	switch {
	case it.SlotAt != nil && !now.Before(*it.SlotAt):
		// A slot reserved before the row went back to the table.
	case it.SlotAt != nil:
		slot, reserved = *it.SlotAt, true
	default:
		rate, err := RateOf(acct)
		if err != nil {
			log.Warn("outbox: bad rate settings; using the channel default", "err", err)
		}
		slot, err = w.limiter.Reserve(ctx, it.TenantID, it.AccountID, rate, now)
		if err != nil {
			log.Warn("outbox: rate limiter unavailable", "err", err)
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
			defer cancel()
			w.deferRow(sctx, log, it, now.Add(retryUnavailable), false)
			return false
		}
		reserved = true
	}
	if !slot.After(now) {
		return true
	}
	w.o.Metrics.incDeferred(string(acct.Type))
	if slot.Sub(now) <= maxHold && w.sleepUntil(ctx, stopping, slot) {
		return true
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	w.deferRow(sctx, log, it, slot, reserved)
	return false
}

// sleepUntil waits until the clock reads t; false when stopped first.
func (w *Worker) sleepUntil(ctx context.Context, stopping <-chan struct{}, t time.Time) bool {
	for {
		d := t.Sub(w.o.Clock.Now())
		if d <= 0 {
			return true
		}
		timer := time.NewTimer(min(d, holdTick))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-stopping:
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// warner is the part of *slog.Logger the settling helpers use.
type warner interface {
	Warn(msg string, args ...any)
}

// deferRow puts the row back untried until at.
func (w *Worker) deferRow(ctx context.Context, log warner, it Item, at time.Time, reserved bool) {
	if err := w.o.Store.MarkDeferred(ctx, it.Lease(), at, reserved); err != nil {
		log.Warn("outbox: putting a row back failed; its lease will return it", "err", err)
		return
	}
	w.wakeFor(at)
}

// sent records a successful send. Recording is retried for a while: a send
// not recorded is sent again when the lease runs out.
func (w *Worker) sent(ctx context.Context, log warner, it Item, channel, channelMsgID string, now time.Time) {
	for {
		err := w.o.Store.MarkSent(ctx, it.ID, channelMsgID, now)
		switch {
		case err == nil:
			w.o.Metrics.incSent(channel)
			it.State, it.ChannelMsgID, it.SentAt = StateSent, channelMsgID, &now
			w.o.Sink.Sent(ctx, it, channelMsgID)
			w.Notify() // the conversation's next row may go now
			return
		case errs.Is(err, errs.Conflict):
			// Another worker took the row over after this one's lease ran
			// out, and its send succeeded too.
			w.o.Metrics.incTwice(channel)
			log.Warn("outbox: row was sent twice", "err", err)
			return
		case errs.Is(err, errs.NotFound):
			log.Warn("outbox: sent row vanished", "err", err)
			return
		}
		log.Warn("outbox: recording a send failed; retrying", "err", err)
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			log.Warn("outbox: send not recorded; it will be sent again after the lease", "err", err)
			return
		case <-t.C:
		}
	}
}

// retry schedules the row again at next, unless its age or attempts say to
// give up.
func (w *Worker) retry(ctx context.Context, log warner, it Item, channel string, now, next time.Time, f failure) {
	if (w.o.MaxAge > 0 && next.Sub(it.QueuedAt) > w.o.MaxAge) || (w.o.MaxAttempts > 0 && it.Attempts >= w.o.MaxAttempts) {
		reason := fmt.Sprintf("gave up after %d attempts in %s: %s", it.Attempts, now.Sub(it.QueuedAt).Round(time.Second), f.reason)
		w.dead(ctx, log, it, channel, DeadExpired, f.code, reason)
		return
	}
	if err := w.o.Store.MarkRetry(ctx, it.Lease(), next, f.code, f.reason); err != nil {
		log.Warn("outbox: scheduling a retry failed; its lease will return it", "err", err)
		return
	}
	w.o.Metrics.incRetry(channel, f.code)
	w.wakeFor(next)
	it.State, it.LastCode, it.LastError, it.NextAt = StatePending, f.code, f.reason, next
	w.o.Sink.Failed(ctx, it, f.code, f.reason, false)
}

// dead gives the row up.
func (w *Worker) dead(ctx context.Context, log warner, it Item, channel, class, code, reason string) {
	if err := w.o.Store.MarkDead(ctx, it.Lease(), w.o.Clock.Now(), code, reason); err != nil {
		log.Warn("outbox: giving a row up failed; its lease will return it", "err", err)
		return
	}
	w.o.Metrics.incDead(channel, class)
	it.State, it.LastCode, it.LastError = StateDead, code, reason
	w.o.Sink.Failed(ctx, it, code, reason, true)
	w.Notify() // the conversation's next row may go now
}

// fallbackOrDie handles a send that cannot succeed through this account:
// the account's SMS fallback takes the message over when there is one and
// the contact has a phone number; otherwise the row is a dead letter.
func (w *Worker) fallbackOrDie(ctx context.Context, log warner, it Item, acct channels.Account, now time.Time, f failure) {
	channel := string(acct.Type)
	class := DeadPermanent
	if f.kind == failWindow {
		class = DeadWindowClosed
	}
	fb, ok, err := w.fallbackItem(ctx, it, acct, now)
	if err != nil {
		// Our own lookup failed, not the send: try the row again later.
		log.Warn("outbox: finding the SMS fallback failed", "err", err)
		w.retry(ctx, log, it, channel, now, now.Add(retryUnavailable), failure{kind: failRetry, code: f.code, reason: f.reason})
		return
	}
	if !ok {
		w.dead(ctx, log, it, channel, class, f.code, f.reason)
		return
	}
	reason := ReasonFellBack + ": " + f.reason
	_, err = w.o.Store.Fallback(ctx, it.Lease(), now, f.code, reason, fb)
	switch {
	case errs.Is(err, errs.Duplicate):
		// The message fell back to this SMS account once already (the row
		// was requeued since): do not send it twice.
		w.dead(ctx, log, it, channel, class, f.code, f.reason)
		return
	case errs.Is(err, errs.Conflict):
		log.Warn("outbox: lease lost before falling back", "err", err)
		return
	case err != nil:
		log.Warn("outbox: queueing the SMS fallback failed", "err", err)
		w.retry(ctx, log, it, channel, now, now.Add(retryUnavailable), failure{kind: failRetry, code: f.code, reason: f.reason})
		return
	}
	w.o.Metrics.incDead(channel, DeadFallback)
	it.State, it.LastCode, it.LastError = StateDead, f.code, reason
	w.o.Sink.Failed(ctx, it, f.code, reason, false)
	w.Notify()
}

// fallbackItem builds the SMS row that replaces it, when the account has a
// fallback account, the contact a phone number and the message a text
// form. A row that is itself a fallback does not fall back again.
func (w *Worker) fallbackItem(ctx context.Context, it Item, acct channels.Account, now time.Time) (Item, bool, error) {
	if it.FallbackOf != 0 || w.o.Phones == nil || len(acct.Settings) == 0 {
		return Item{}, false, nil
	}
	var s channels.AccountSettings
	if err := json.Unmarshal(acct.Settings, &s); err != nil || s.FallbackAccountID == "" || s.FallbackAccountID == acct.ID {
		return Item{}, false, nil
	}
	text := FallbackText(it.Out)
	if text == "" {
		return Item{}, false, nil
	}
	if _, err := w.account(ctx, it.TenantID, s.FallbackAccountID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return Item{}, false, nil
		}
		return Item{}, false, err
	}
	phone, ok, err := w.o.Phones.FallbackTarget(ctx, it.TenantID, it.ConversationID)
	if err != nil || !ok || phone == "" {
		return Item{}, false, err
	}
	return Item{
		TenantID: it.TenantID, AccountID: s.FallbackAccountID, ConversationID: it.ConversationID, MessageID: it.MessageID,
		Out: channels.Outbound{
			ExternalID: phone, Type: channels.MsgText, Text: text,
			IdempotencyKey: it.Out.IdempotencyKey + ":" + s.FallbackAccountID,
		},
		CreatedAt: now,
	}, true, nil
}
