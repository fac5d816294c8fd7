package sessionsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// The sessions and conversations of a contact's family (the contact and
// the contacts merged into it), as subqueries whose IN (?) takes the
// family's ids; tenant_id comes first.
const (
	famSessions      = `SELECT id FROM sessions WHERE tenant_id = ? AND contact_id IN (?)`
	famConversations = `SELECT id FROM conversations WHERE tenant_id = ? AND contact_id IN (?)`
)

// historyMessageRow is a message with the number of messages of its
// session.
type historyMessageRow struct {
	messageRow
	N int `db:"n"`
}

// ContactHistory implements session.ContactStore: one query for a page of
// sessions and one for the newest messages of each (a window function).
func (s *Store) ContactHistory(ctx context.Context, tenantID, contactID string, q session.HistoryQuery) (session.History, error) {
	const op = "sessionsql.ContactHistory"
	q = q.Clamped()
	fam, err := s.family(ctx, tenantID, contactID)
	if err != nil {
		return session.History{}, errs.Wrap(op, err)
	}
	query := `SELECT ` + sessionColumns + ` FROM sessions WHERE tenant_id = ? AND contact_id IN (?)`
	args := []any{tenantID, fam}
	if q.Before != "" {
		var at time.Time
		bq, bargs, err := in(`SELECT created_at FROM sessions WHERE tenant_id = ? AND id = ? AND contact_id IN (?)`, tenantID, q.Before, fam)
		if err != nil {
			return session.History{}, errs.Wrap(op, err)
		}
		if err := s.get(ctx, &at, bq, bargs...); err != nil {
			if errs.Is(err, errs.NotFound) {
				return session.History{}, errs.E(op, errs.Invalid, "before: no session %s of contact %s", q.Before, contactID)
			}
			return session.History{}, errs.Wrap(op, err)
		}
		at = dbTime(at)
		query += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		args = append(args, at, at, q.Before)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, q.Limit+1)
	query, args, err = in(query, args...)
	if err != nil {
		return session.History{}, errs.Wrap(op, err)
	}
	var rows []sessionRow
	if err := s.sel(ctx, &rows, query, args...); err != nil {
		return session.History{}, errs.Wrap(op, err)
	}
	h := session.History{Items: []session.HistoryItem{}}
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		h.Next = rows[len(rows)-1].ID
	}
	ss, err := sessionsFromRows(rows)
	if err != nil || len(ss) == 0 {
		return h, errs.Wrap(op, err)
	}
	ids := make([]string, len(ss))
	for i, se := range ss {
		ids[i] = se.ID
	}
	mq, margs, err := in(`SELECT `+messageColumns+`, n FROM (
			SELECT `+messageColumns+`,
				ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY seq DESC) AS rn,
				COUNT(*) OVER (PARTITION BY session_id) AS n
			FROM messages WHERE tenant_id = ? AND session_id IN (?)) m
		WHERE rn <= ?
		ORDER BY session_id, seq`, tenantID, ids, q.Messages)
	if err != nil {
		return session.History{}, errs.Wrap(op, err)
	}
	var msgs []historyMessageRow
	if err := s.sel(ctx, &msgs, mq, margs...); err != nil {
		return session.History{}, errs.Wrap(op, err)
	}
	bySession := map[string][]session.Message{}
	total := map[string]int{}
	for _, m := range msgs {
		bySession[m.SessionID] = append(bySession[m.SessionID], m.message())
		total[m.SessionID] = m.N
	}
	for _, se := range ss {
		ms := bySession[se.ID]
		if ms == nil {
			ms = []session.Message{}
		}
		h.Items = append(h.Items, session.HistoryItem{Session: se, Messages: ms, MoreMessages: total[se.ID] > len(ms)})
	}
	return h, nil
}

// ContactExport implements session.ContactStore. The reads are not one
// snapshot: a contact being written to while exported may show a message
// without its latest status.
func (s *Store) ContactExport(ctx context.Context, tenantID, contactID string) (session.Export, error) {
	const op = "sessionsql.ContactExport"
	fam, err := s.family(ctx, tenantID, contactID)
	if err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x := session.Export{Format: session.ExportFormat}
	// sel runs a query whose IN (?) lists take the family.
	sel := func(dest any, query string, args ...any) error {
		query, args, err := in(query, args...)
		if err != nil {
			return err
		}
		return s.sel(ctx, dest, query, args...)
	}
	var contacts []contactFullRow
	if err := sel(&contacts, `SELECT `+contactFullColumns+` FROM contacts WHERE tenant_id = ? AND id IN (?)
		ORDER BY created_at, id`, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	cs, err := contactsFromRows(contacts)
	if err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x.MergedContacts = []session.Contact{}
	for _, c := range cs {
		if c.ID == contactID {
			x.Contact = c
		} else {
			x.MergedContacts = append(x.MergedContacts, c)
		}
	}
	var ids []identityRow
	if err := sel(&ids, `SELECT `+identityColumns+` FROM identities WHERE tenant_id = ? AND contact_id IN (?)
		ORDER BY created_at, account_id, external_id`, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x.Identities = identitiesFromRows(ids)
	var convs []conversationRow
	if err := sel(&convs, `SELECT `+conversationColumns+` FROM conversations WHERE tenant_id = ? AND contact_id IN (?)
		ORDER BY created_at, id`, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x.Conversations = make([]session.Conversation, 0, len(convs))
	for _, r := range convs {
		x.Conversations = append(x.Conversations, r.conversation())
	}
	var ss []sessionRow
	if err := sel(&ss, `SELECT `+sessionColumns+` FROM sessions WHERE tenant_id = ? AND contact_id IN (?)
		ORDER BY created_at, id`, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	if x.Sessions, err = sessionsFromRows(ss); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	var evs []eventRow
	if err := sel(&evs, `SELECT `+eventColumns+` FROM session_events WHERE tenant_id = ? AND session_id IN (`+famSessions+`)
		ORDER BY id`, tenantID, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x.Events = make([]session.EventRecord, 0, len(evs))
	for _, r := range evs {
		x.Events = append(x.Events, r.event())
	}
	var ms []messageRow
	if err := sel(&ms, `SELECT `+messageColumns+` FROM messages WHERE tenant_id = ? AND conversation_id IN (`+famConversations+`)
		ORDER BY conversation_id, seq`, tenantID, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x.Messages = messagesFromRows(ms)
	var ns []noteRow
	if err := sel(&ns, `SELECT `+noteColumns+` FROM notes WHERE tenant_id = ? AND session_id IN (`+famSessions+`)
		ORDER BY created_at, id`, tenantID, tenantID, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	x.Notes = make([]session.Note, 0, len(ns))
	for _, r := range ns {
		x.Notes = append(x.Notes, r.note())
	}
	var mgs []mergeRow
	if err := sel(&mgs, `SELECT `+mergeColumns+` FROM contact_merges WHERE tenant_id = ? AND (survivor_id IN (?) OR merged_id IN (?))
		ORDER BY created_at, id`, tenantID, fam, fam); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	if x.Merges, err = mergesFromRows(mgs); err != nil {
		return session.Export{}, errs.Wrap(op, err)
	}
	return x, nil
}

// erasedChanges replaces the changes of a merge whose contacts were
// erased: they named identities and held the survivor's profile.
const erasedChanges = `{"erased":true}`

// ContactDelete implements session.ContactStore in one transaction that
// holds the contact's row lock. Sessions and conversations stay (they hold
// no personal data and KPIs count them); the contact rows stay as
// anonymised tombstones so their foreign keys hold, with erased_at and
// erased_by as the record of the erasure.
func (s *Store) ContactDelete(ctx context.Context, tenantID, contactID, actor string, now time.Time) (session.Erasure, error) {
	const op = "sessionsql.ContactDelete"
	var out session.Erasure
	err := s.inTx(ctx, op, func(tx *Store) error {
		cs, err := tx.lockContacts(ctx, tenantID, now, contactID)
		if err != nil {
			return err
		}
		if into := cs[contactID].MergedInto; into != "" {
			return errs.E("", errs.Conflict, "contact %s was merged into %s: erase %s (which erases this contact too) or undo the merge first",
				contactID, into, into).With("merged_into", into)
		}
		fam, err := tx.family(ctx, tenantID, contactID)
		if err != nil {
			return err
		}
		out.Contacts = fam
		// run executes a statement whose IN (?) lists take the family.
		run := func(query string, args ...any) (int64, error) {
			query, args, err := in(query, args...)
			if err != nil {
				return 0, err
			}
			return tx.exec(ctx, query, args...)
		}
		count := func(query string, args ...any) (int64, error) {
			query, args, err := in(query, args...)
			if err != nil {
				return 0, err
			}
			var n int64
			return n, tx.get(ctx, &n, query, args...)
		}
		var open []struct {
			ID    string `db:"id"`
			State string `db:"state"`
		}
		oq, oargs, err := in(`SELECT id, state FROM sessions WHERE tenant_id = ? AND contact_id IN (?) AND state <> ?
			ORDER BY created_at, id LIMIT 1`, tenantID, fam, string(session.StateClosed))
		if err != nil {
			return err
		}
		if err := tx.sel(ctx, &open, oq, oargs...); err != nil {
			return err
		}
		if len(open) > 0 {
			return errs.E("", errs.Conflict, "session %s of the contact is %s: erase after it is closed", open[0].ID, open[0].State).
				With("session_id", open[0].ID).With("state", session.State(open[0].State))
		}
		steps := []struct {
			n     *int64
			query string
			args  []any
			write bool
		}{
			{&out.Messages, `DELETE FROM messages WHERE tenant_id = ? AND conversation_id IN (` + famConversations + `)`,
				[]any{tenantID, tenantID, fam}, true},
			// Outbox rows carry the text and the address of what was sent
			// (channels/outbox); unsent ones are cancelled with them.
			{&out.Outbox, `DELETE FROM outbox WHERE tenant_id = ? AND conversation_id IN (` + famConversations + `)`,
				[]any{tenantID, tenantID, fam}, true},
			{&out.Notes, `DELETE FROM notes WHERE tenant_id = ? AND session_id IN (` + famSessions + `)`,
				[]any{tenantID, tenantID, fam}, true},
			{&out.Events, `UPDATE session_events SET data = '{}' WHERE tenant_id = ? AND session_id IN (` + famSessions + `)`,
				[]any{tenantID, tenantID, fam}, true},
			{&out.Identities, `DELETE FROM identities WHERE tenant_id = ? AND contact_id IN (?)`,
				[]any{tenantID, fam}, true},
			{&out.Merges, `UPDATE contact_merges SET changes = '` + erasedChanges + `'
				WHERE tenant_id = ? AND (survivor_id IN (?) OR merged_id IN (?))`,
				[]any{tenantID, fam, fam}, true},
			{&out.Sessions, `SELECT COUNT(*) FROM sessions WHERE tenant_id = ? AND contact_id IN (?)`,
				[]any{tenantID, fam}, false},
			{&out.Conversations, `SELECT COUNT(*) FROM conversations WHERE tenant_id = ? AND contact_id IN (?)`,
				[]any{tenantID, fam}, false},
		}
		for _, st := range steps {
			f := count
			if st.write {
				f = run
			}
			if *st.n, err = f(st.query, st.args...); err != nil {
				return err
			}
		}
		_, err = run(`UPDATE contacts SET display_name = '', vip_level = 0, tags = '[]', attributes = '{}',
				erased_at = ?, erased_by = ?, updated_at = ?
			WHERE tenant_id = ? AND id IN (?)`, dbTime(now), actor, dbTime(now), tenantID, fam)
		return err
	})
	if err != nil {
		return session.Erasure{}, errs.Wrap(op, err)
	}
	return out, nil
}
