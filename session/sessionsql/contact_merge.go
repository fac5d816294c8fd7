package sessionsql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

const mergeColumns = `tenant_id, id, survivor_id, merged_id, reason, actor, changes, created_at,
	undone_at, undone_by`

type mergeRow struct {
	TenantID   string         `db:"tenant_id"`
	ID         string         `db:"id"`
	SurvivorID string         `db:"survivor_id"`
	MergedID   string         `db:"merged_id"`
	Reason     string         `db:"reason"`
	Actor      string         `db:"actor"`
	Changes    string         `db:"changes"` // JSON of session.MergeChanges
	CreatedAt  time.Time      `db:"created_at"`
	UndoneAt   sql.NullTime   `db:"undone_at"`
	UndoneBy   sql.NullString `db:"undone_by"`
}

func (r mergeRow) merge() (session.Merge, error) {
	m := session.Merge{
		TenantID:   r.TenantID,
		ID:         r.ID,
		SurvivorID: r.SurvivorID,
		MergedID:   r.MergedID,
		Reason:     session.MergeReason(r.Reason),
		Actor:      r.Actor,
		CreatedAt:  r.CreatedAt.UTC(),
		UndoneAt:   timePtr(r.UndoneAt),
		UndoneBy:   r.UndoneBy.String,
	}
	if err := json.Unmarshal([]byte(r.Changes), &m.Changes); err != nil {
		return session.Merge{}, fmt.Errorf("merge %s: changes: %w", r.ID, err)
	}
	fillChanges(&m.Changes)
	return m, nil
}

// fillChanges makes the lists and maps of changes empty rather than nil,
// as they were before encoding.
func fillChanges(c *session.MergeChanges) {
	if c.Identities == nil {
		c.Identities = []session.IdentityKey{}
	}
	if c.Conversations == nil {
		c.Conversations = []string{}
	}
	if c.KeptConversations == nil {
		c.KeptConversations = []string{}
	}
	for _, p := range []*session.Profile{&c.SurvivorBefore, &c.SurvivorAfter} {
		if p.Tags == nil {
			p.Tags = []string{}
		}
		if p.Attributes == nil {
			p.Attributes = map[string]string{}
		}
	}
}

func mergesFromRows(rows []mergeRow) ([]session.Merge, error) {
	out := make([]session.Merge, 0, len(rows))
	for _, r := range rows {
		m, err := r.merge()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ContactMergeCandidates implements session.ContactStore: two self-joins
// of identities through the union id and phone indexes.
func (s *Store) ContactMergeCandidates(ctx context.Context, tenantID, contactID string) ([]session.MergeCandidate, error) {
	const op = "sessionsql.ContactMergeCandidates"
	if _, err := s.contactGet(ctx, tenantID, contactID); err != nil {
		return nil, errs.Wrap(op, err)
	}
	var matches []struct {
		ContactID string `db:"contact_id"`
		Reason    string `db:"reason"`
		Value     string `db:"value"`
	}
	// The contact's own values first (IN subqueries), then the identities
	// holding them by equality on the union / phone indexes: written as a
	// join, SQLite walked the tenant's whole identities table in the outer
	// loop; with an IS NOT NULL term it ranges over every non-null value.
	if err := s.sel(ctx, &matches, `SELECT b.contact_id AS contact_id, 'union_id' AS reason, b.union_id AS value
			FROM identities b
			WHERE b.tenant_id = ? AND b.contact_id <> ?
				AND b.union_id IN (SELECT union_id FROM identities
					WHERE tenant_id = ? AND contact_id = ? AND union_id IS NOT NULL)
		UNION
		SELECT b.contact_id AS contact_id, 'phone' AS reason, b.phone AS value
			FROM identities b
			WHERE b.tenant_id = ? AND b.phone_verified AND b.contact_id <> ?
				AND b.phone IN (SELECT phone FROM identities
					WHERE tenant_id = ? AND contact_id = ? AND phone IS NOT NULL AND phone_verified)
		ORDER BY contact_id, reason, value`,
		tenantID, contactID, tenantID, contactID, tenantID, contactID, tenantID, contactID); err != nil {
		return nil, errs.Wrap(op, err)
	}
	byContact := map[string][]session.MergeMatch{}
	var ids []string
	for _, m := range matches {
		if _, ok := byContact[m.ContactID]; !ok {
			ids = append(ids, m.ContactID)
		}
		byContact[m.ContactID] = append(byContact[m.ContactID], session.MergeMatch{Reason: session.MergeReason(m.Reason), Value: m.Value})
	}
	out := []session.MergeCandidate{}
	if len(ids) == 0 {
		return out, nil
	}
	query, args, err := in(`SELECT `+contactFullColumns+` FROM contacts
		WHERE tenant_id = ? AND id IN (?) AND erased_at IS NULL AND merged_into IS NULL
		ORDER BY created_at, id`, tenantID, ids)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	var rows []contactFullRow
	if err := s.sel(ctx, &rows, query, args...); err != nil {
		return nil, errs.Wrap(op, err)
	}
	cs, err := contactsFromRows(rows)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	for _, c := range cs {
		out = append(out, session.MergeCandidate{Contact: c, Matches: byContact[c.ID]})
	}
	return out, nil
}

// lockContacts takes the row locks of the contacts in id order (so that
// two merges of one pair cannot deadlock), marking them updated at now,
// and returns them by id. A missing or erased contact is NotFound.
func (s *Store) lockContacts(ctx context.Context, tenantID string, now time.Time, ids ...string) (map[string]session.Contact, error) {
	sorted := slices.Sorted(slices.Values(ids))
	out := make(map[string]session.Contact, len(ids))
	for _, id := range sorted {
		var r contactFullRow
		if err := s.get(ctx, &r, `UPDATE contacts SET updated_at = ?
			WHERE tenant_id = ? AND id = ? AND erased_at IS NULL
			RETURNING `+contactFullColumns, dbTime(now), tenantID, id); err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, errs.E("", errs.NotFound, "contact %s not found", id)
			}
			return nil, err
		}
		c, err := r.contact()
		if err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, nil
}

// openStates are the session states in which a session takes customer
// messages (session.State.Open), for SQL.
var openStates = []string{string(session.StateBot), string(session.StateQueued), string(session.StateOffered), string(session.StateActive)}

// ContactMerge implements session.ContactStore. It runs in one transaction
// holding the row locks of both contacts.
func (s *Store) ContactMerge(ctx context.Context, tenantID, survivorID, mergedID string, reason session.MergeReason, actor string, now time.Time) (session.Merge, error) {
	const op = "sessionsql.ContactMerge"
	switch {
	case survivorID == mergedID:
		return session.Merge{}, errs.E(op, errs.Invalid, "a contact cannot be merged into itself")
	case !reason.Valid():
		return session.Merge{}, errs.E(op, errs.Invalid, "reason %q: must be union_id, phone or manual", reason)
	}
	mg := session.Merge{TenantID: tenantID, ID: newID(), SurvivorID: survivorID, MergedID: mergedID,
		Reason: reason, Actor: actor, CreatedAt: dbTime(now)}
	err := s.inTx(ctx, op, func(tx *Store) error {
		cs, err := tx.lockContacts(ctx, tenantID, now, survivorID, mergedID)
		if err != nil {
			return err
		}
		sv, md := cs[survivorID], cs[mergedID]
		for _, c := range []session.Contact{sv, md} {
			if c.MergedInto != "" {
				return errs.E("", errs.Conflict, "contact %s was already merged into %s", c.ID, c.MergedInto).With("merged_into", c.MergedInto)
			}
		}
		if reason != session.MergeManual {
			if err := tx.checkShared(ctx, tenantID, survivorID, mergedID, reason); err != nil {
				return err
			}
		}
		var keys []struct {
			AccountID  string `db:"account_id"`
			ExternalID string `db:"external_id"`
		}
		if err := tx.sel(ctx, &keys, `SELECT account_id, external_id FROM identities
			WHERE tenant_id = ? AND contact_id = ? ORDER BY account_id, external_id`, tenantID, mergedID); err != nil {
			return err
		}
		ids := make([]session.IdentityKey, 0, len(keys))
		for _, k := range keys {
			ids = append(ids, session.IdentityKey{AccountID: k.AccountID, ExternalID: k.ExternalID})
		}
		var convs []struct {
			ID        string         `db:"id"`
			AccountID string         `db:"account_id"`
			State     sql.NullString `db:"state"`
			Taken     bool           `db:"taken"`
		}
		// taken: the survivor has a conversation on the same account.
		if err := tx.sel(ctx, &convs, `SELECT c.id, c.account_id, s.state,
				EXISTS (SELECT 1 FROM conversations o WHERE o.tenant_id = c.tenant_id
					AND o.account_id = c.account_id AND o.contact_id = ?) AS taken
			FROM conversations c
			LEFT JOIN sessions s ON s.tenant_id = c.tenant_id AND s.id = c.current_session_id
			WHERE c.tenant_id = ? AND c.contact_id = ?
			ORDER BY c.id`, survivorID, tenantID, mergedID); err != nil {
			return err
		}
		ch := session.MergeChanges{Identities: ids, Conversations: []string{}, KeptConversations: []string{}}
		for _, c := range convs {
			if !c.Taken {
				ch.Conversations = append(ch.Conversations, c.ID)
				continue
			}
			if session.State(c.State.String).Open() {
				return errs.E("", errs.Conflict, "conversation %s of contact %s on account %s has an open session and contact %s has its own conversation there: close the session first",
					c.ID, mergedID, c.AccountID, survivorID).With("conversation_id", c.ID)
			}
			ch.KeptConversations = append(ch.KeptConversations, c.ID)
		}
		if _, err := tx.exec(ctx, `UPDATE identities SET contact_id = ? WHERE tenant_id = ? AND contact_id = ?`,
			survivorID, tenantID, mergedID); err != nil {
			return err
		}
		if err := tx.moveConversations(ctx, tenantID, ch.Conversations, mergedID, survivorID); err != nil {
			return err
		}
		ch.SurvivorBefore = session.ProfileOf(sv)
		ch.SurvivorAfter = session.Combine(ch.SurvivorBefore, session.ProfileOf(md))
		if err := tx.setProfile(ctx, tenantID, survivorID, ch.SurvivorAfter); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE contacts SET merged_into = ? WHERE tenant_id = ? AND id = ?`,
			survivorID, tenantID, mergedID); err != nil {
			return err
		}
		mg.Changes = ch
		b, err := json.Marshal(ch)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO contact_merges (`+mergeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
			tenantID, mg.ID, survivorID, mergedID, string(reason), actor, string(b), mg.CreatedAt)
		return err
	})
	if err != nil {
		return session.Merge{}, errs.Wrap(op, err)
	}
	fillChanges(&mg.Changes)
	return mg, nil
}

// checkShared requires the two contacts to share the fact reason names.
func (s *Store) checkShared(ctx context.Context, tenantID, a, b string, reason session.MergeReason) error {
	cond := `x.union_id IS NOT NULL AND y.union_id = x.union_id`
	if reason == session.MergePhone {
		cond = `x.phone IS NOT NULL AND x.phone_verified AND y.phone = x.phone AND y.phone_verified`
	}
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM identities x JOIN identities y ON y.tenant_id = x.tenant_id
		WHERE x.tenant_id = ? AND x.contact_id = ? AND y.contact_id = ? AND `+cond, tenantID, a, b); err != nil {
		return err
	}
	if n == 0 {
		what := "a union id"
		if reason == session.MergePhone {
			what = "a verified phone"
		}
		return errs.E("", errs.Invalid, "reason %s: contacts %s and %s share no %s", reason, a, b, what)
	}
	return nil
}

// moveConversations gives conversations, and their sessions that belong
// to from, to contact to.
func (s *Store) moveConversations(ctx context.Context, tenantID string, convIDs []string, from, to string) error {
	if len(convIDs) == 0 {
		return nil
	}
	for _, q := range []string{
		`UPDATE conversations SET contact_id = ? WHERE tenant_id = ? AND contact_id = ? AND id IN (?)`,
		`UPDATE sessions SET contact_id = ? WHERE tenant_id = ? AND contact_id = ? AND conversation_id IN (?)`,
	} {
		query, args, err := in(q, to, tenantID, from, convIDs)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, query, args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) setProfile(ctx context.Context, tenantID, id string, p session.Profile) error {
	_, err := s.exec(ctx, `UPDATE contacts SET display_name = ?, vip_level = ?, tags = ?, attributes = ?
		WHERE tenant_id = ? AND id = ?`, p.DisplayName, p.VIPLevel, tagsJSON(p.Tags), attributesJSON(p.Attributes), tenantID, id)
	return err
}

// ContactMergeUndo implements session.ContactStore: every check runs
// before the first write, in the transaction that holds both contacts.
func (s *Store) ContactMergeUndo(ctx context.Context, tenantID, mergeID, actor string, now time.Time) (session.Merge, error) {
	const op = "sessionsql.ContactMergeUndo"
	var mg session.Merge
	err := s.inTx(ctx, op, func(tx *Store) error {
		var r mergeRow
		if err := tx.get(ctx, &r, `SELECT `+mergeColumns+` FROM contact_merges WHERE tenant_id = ? AND id = ?`, tenantID, mergeID); err != nil {
			if errs.Is(err, errs.NotFound) {
				return errs.E("", errs.NotFound, "merge %s not found", mergeID)
			}
			return err
		}
		var err error
		if mg, err = r.merge(); err != nil {
			return err
		}
		if mg.UndoneAt != nil {
			return errs.E("", errs.Conflict, "merge %s was undone at %s by %s", mg.ID, mg.UndoneAt.Format(time.RFC3339), mg.UndoneBy)
		}
		if mg.Changes.Erased {
			return errs.E("", errs.Conflict, "the contacts of merge %s were erased", mg.ID)
		}
		cs, err := tx.lockContacts(ctx, tenantID, now, mg.SurvivorID, mg.MergedID)
		if errs.Is(err, errs.NotFound) {
			return errs.E("", errs.Conflict, "a contact of merge %s no longer exists: %v", mg.ID, errs.MessageOf(err))
		}
		if err != nil {
			return err
		}
		if err := tx.checkUndo(ctx, mg, cs[mg.SurvivorID], cs[mg.MergedID]); err != nil {
			return err
		}
		ch := mg.Changes
		for _, k := range ch.Identities {
			if _, err := tx.exec(ctx, `UPDATE identities SET contact_id = ?
				WHERE tenant_id = ? AND account_id = ? AND external_id = ?`, mg.MergedID, tenantID, k.AccountID, k.ExternalID); err != nil {
				return err
			}
		}
		if err := tx.moveConversations(ctx, tenantID, ch.Conversations, mg.SurvivorID, mg.MergedID); err != nil {
			return err
		}
		// A field edited since the merge keeps its new value.
		cur := session.ProfileOf(cs[mg.SurvivorID])
		before, after := ch.SurvivorBefore, ch.SurvivorAfter
		if cur.DisplayName == after.DisplayName {
			cur.DisplayName = before.DisplayName
		}
		if cur.VIPLevel == after.VIPLevel {
			cur.VIPLevel = before.VIPLevel
		}
		if slices.Equal(cur.Tags, after.Tags) {
			cur.Tags = before.Tags
		}
		if (session.Profile{Attributes: cur.Attributes}).Equal(session.Profile{Attributes: after.Attributes}) {
			cur.Attributes = before.Attributes
		}
		if err := tx.setProfile(ctx, tenantID, mg.SurvivorID, cur); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE contacts SET merged_into = NULL WHERE tenant_id = ? AND id = ?`, tenantID, mg.MergedID); err != nil {
			return err
		}
		at := dbTime(now)
		mg.UndoneAt, mg.UndoneBy = &at, actor
		_, err = tx.exec(ctx, `UPDATE contact_merges SET undone_at = ?, undone_by = ? WHERE tenant_id = ? AND id = ?`,
			at, actor, tenantID, mg.ID)
		return err
	})
	if err != nil {
		return session.Merge{}, errs.Wrap(op, err)
	}
	return mg, nil
}

// checkUndo refuses an undo that can no longer restore what the merge
// changed, saying why.
func (s *Store) checkUndo(ctx context.Context, mg session.Merge, sv, md session.Contact) error {
	tenantID := mg.TenantID
	if md.MergedInto != mg.SurvivorID {
		return errs.E("", errs.Conflict, "contact %s is no longer merged into %s", md.ID, mg.SurvivorID)
	}
	if sv.MergedInto != "" {
		var later string
		_ = s.get(ctx, &later, `SELECT id FROM contact_merges WHERE tenant_id = ? AND merged_id = ? AND undone_at IS NULL
			ORDER BY created_at DESC, id DESC LIMIT 1`, tenantID, sv.ID)
		return errs.E("", errs.Conflict, "contact %s has since been merged into %s (merge %s): undo that merge first", sv.ID, sv.MergedInto, later).
			With("merge_id", later)
	}
	ch := mg.Changes
	if len(ch.Identities) > 0 {
		var owners []struct {
			AccountID  string `db:"account_id"`
			ExternalID string `db:"external_id"`
			ContactID  string `db:"contact_id"`
		}
		q := make([]string, 0, len(ch.Identities))
		args := []any{tenantID}
		for _, k := range ch.Identities {
			q = append(q, `(account_id = ? AND external_id = ?)`)
			args = append(args, k.AccountID, k.ExternalID)
		}
		if err := s.sel(ctx, &owners, `SELECT account_id, external_id, contact_id FROM identities
			WHERE tenant_id = ? AND (`+strings.Join(q, " OR ")+`)`, args...); err != nil {
			return err
		}
		owner := map[session.IdentityKey]string{}
		for _, o := range owners {
			owner[session.IdentityKey{AccountID: o.AccountID, ExternalID: o.ExternalID}] = o.ContactID
		}
		for _, k := range ch.Identities {
			switch c, ok := owner[k]; {
			case !ok:
				return errs.E("", errs.Conflict, "identity %s/%s no longer exists", k.AccountID, k.ExternalID)
			case c != mg.SurvivorID:
				return errs.E("", errs.Conflict, "identity %s/%s now belongs to contact %s", k.AccountID, k.ExternalID, c)
			}
		}
	}
	if len(ch.Conversations) > 0 {
		var convs []struct {
			ID        string `db:"id"`
			AccountID string `db:"account_id"`
			ContactID string `db:"contact_id"`
		}
		query, args, err := in(`SELECT id, account_id, contact_id FROM conversations WHERE tenant_id = ? AND id IN (?)`, tenantID, ch.Conversations)
		if err != nil {
			return err
		}
		if err := s.sel(ctx, &convs, query, args...); err != nil {
			return err
		}
		found := map[string]string{}
		for _, c := range convs {
			found[c.ID] = c.ContactID
			// A conversation the merged contact opened on the account since
			// (a race with the merge) would collide with the one going back.
			var n int
			if err := s.get(ctx, &n, `SELECT COUNT(*) FROM conversations WHERE tenant_id = ? AND account_id = ? AND contact_id = ?`,
				tenantID, c.AccountID, mg.MergedID); err != nil {
				return err
			}
			if n > 0 {
				return errs.E("", errs.Conflict, "contact %s has a new conversation on account %s", mg.MergedID, c.AccountID)
			}
		}
		for _, id := range ch.Conversations {
			switch c, ok := found[id]; {
			case !ok:
				return errs.E("", errs.Conflict, "conversation %s no longer exists", id)
			case c != mg.SurvivorID:
				return errs.E("", errs.Conflict, "conversation %s now belongs to contact %s", id, c)
			}
		}
	}
	if len(ch.KeptConversations) > 0 {
		// The merged identities wrote into the survivor's conversation on
		// the kept conversation's account; their messages cannot be told
		// from the survivor's own, so they cannot go back.
		query, args, err := in(`SELECT COUNT(*) FROM messages m
			JOIN conversations sc ON sc.tenant_id = m.tenant_id AND sc.id = m.conversation_id
			JOIN conversations k ON k.tenant_id = sc.tenant_id AND k.account_id = sc.account_id
			WHERE m.tenant_id = ? AND sc.contact_id = ? AND k.id IN (?) AND m.direction = ? AND m.created_at >= ?`,
			tenantID, mg.SurvivorID, ch.KeptConversations, string(session.Inbound), dbTime(mg.CreatedAt))
		if err != nil {
			return err
		}
		var n int
		if err := s.get(ctx, &n, query, args...); err != nil {
			return err
		}
		if n > 0 {
			return errs.E("", errs.Conflict, "contact %s's conversation on the account of a kept conversation received %d customer messages since the merge; they cannot be told apart and moved back", mg.SurvivorID, n)
		}
	}
	return nil
}

// ContactMerges lists merges, newest first.
func (s *Store) ContactMerges(ctx context.Context, tenantID string, f session.MergeFilter) ([]session.Merge, error) {
	const op = "sessionsql.ContactMerges"
	query := `SELECT ` + mergeColumns + ` FROM contact_merges WHERE tenant_id = ?`
	args := []any{tenantID}
	if f.ContactID != "" {
		query += ` AND (survivor_id = ? OR merged_id = ?)`
		args = append(args, f.ContactID, f.ContactID)
	}
	if f.Before != "" {
		var at time.Time
		if err := s.get(ctx, &at, `SELECT created_at FROM contact_merges WHERE tenant_id = ? AND id = ?`, tenantID, f.Before); err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, errs.E(op, errs.Invalid, "before: no merge %s", f.Before)
			}
			return nil, errs.Wrap(op, err)
		}
		at = dbTime(at)
		query += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		args = append(args, at, at, f.Before)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, clampLimit(f.Limit))
	var rows []mergeRow
	if err := s.sel(ctx, &rows, query, args...); err != nil {
		return nil, errs.Wrap(op, err)
	}
	out, err := mergesFromRows(rows)
	return out, errs.Wrap(op, err)
}
