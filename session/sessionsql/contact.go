package sessionsql

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// newID returns a time-ordered id for rows the store creates itself.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// ContactResolve returns the contact behind an identity, creating contact
// and identity on first sight. Two concurrent first sightings end with one
// contact: the identity insert of the loser does nothing (ON CONFLICT), so
// it removes the contact it had just created and reads the winner's.
func (s *Store) ContactResolve(ctx context.Context, tenantID, accountID, externalID, displayName string, now time.Time) (session.Contact, error) {
	const op = "sessionsql.ContactResolve"
	c, err := s.contactByIdentity(ctx, tenantID, accountID, externalID)
	switch {
	case err == nil:
		return c, nil
	case !errs.Is(err, errs.NotFound):
		return session.Contact{}, errs.Wrap(op, err)
	}
	err = s.inTx(ctx, op, func(tx *Store) error {
		row := contactRow{TenantID: tenantID, ID: newID(), DisplayName: displayName, CreatedAt: dbTime(now)}
		if _, err := tx.exec(ctx, `INSERT INTO contacts (`+contactColumns+`) VALUES (?, ?, ?, ?, ?)`,
			row.TenantID, row.ID, row.DisplayName, row.VIPLevel, row.CreatedAt); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `INSERT INTO identities (tenant_id, account_id, external_id, contact_id, created_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, account_id, external_id) DO NOTHING`,
			tenantID, accountID, externalID, row.ID, row.CreatedAt)
		if err != nil {
			return err
		}
		if n == 1 {
			c = row.contact()
			return nil
		}
		// Lost the race for the identity: drop our contact, take theirs.
		if _, err := tx.exec(ctx, `DELETE FROM contacts WHERE tenant_id = ? AND id = ?`, tenantID, row.ID); err != nil {
			return err
		}
		c, err = tx.contactByIdentity(ctx, tenantID, accountID, externalID)
		return err
	})
	if err != nil {
		return session.Contact{}, errs.Wrap(op, err)
	}
	return c, nil
}

func (s *Store) contactByIdentity(ctx context.Context, tenantID, accountID, externalID string) (session.Contact, error) {
	var r contactRow
	err := s.get(ctx, &r, `SELECT c.tenant_id, c.id, c.display_name, c.vip_level, c.created_at
		FROM identities i
		JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id
		WHERE i.tenant_id = ? AND i.account_id = ? AND i.external_id = ?`,
		tenantID, accountID, externalID)
	if err != nil {
		return session.Contact{}, err
	}
	return r.contact(), nil
}

// ContactGet returns one contact.
func (s *Store) ContactGet(ctx context.Context, tenantID, id string) (session.Contact, error) {
	var r contactRow
	err := s.get(ctx, &r, `SELECT `+contactColumns+` FROM contacts WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return session.Contact{}, errs.Wrap("sessionsql.ContactGet", err)
	}
	return r.contact(), nil
}

// ContactSetVIP sets a contact's VIP level.
func (s *Store) ContactSetVIP(ctx context.Context, tenantID, id string, level int) error {
	return s.execOne(ctx, "sessionsql.ContactSetVIP", "contact", id,
		`UPDATE contacts SET vip_level = ? WHERE tenant_id = ? AND id = ?`, level, tenantID, id)
}
