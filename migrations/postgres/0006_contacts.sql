-- 0006: contacts across channels (docs/contacts.md). Identities carry what
-- channels tell about them (account type, WeChat UnionID, phone, name, the
-- last inbound message that opens the customer-service window); contacts
-- gain tags, attributes and merged_into; merges are audited in
-- contact_merges with everything needed to undo them; erasure leaves an
-- anonymised tombstone (erased_at) so that the sessions KPIs count keep
-- their foreign keys.

ALTER TABLE identities ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN union_id TEXT NULL;
-- E.164 ("+8613800138000"); phone_verified: the channel vouches for it.
ALTER TABLE identities ADD COLUMN phone TEXT NULL;
ALTER TABLE identities ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE identities ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN last_inbound_at TIMESTAMPTZ NULL;
-- Merge candidates and search; partial, as most identities have neither.
CREATE INDEX identities_union ON identities (tenant_id, union_id) WHERE union_id IS NOT NULL;
CREATE INDEX identities_phone ON identities (tenant_id, phone) WHERE phone IS NOT NULL;
-- A contact's identities (merges, profile); search by external id.
CREATE INDEX identities_contact ON identities (tenant_id, contact_id);
CREATE INDEX identities_external ON identities (tenant_id, external_id);

ALTER TABLE contacts ADD COLUMN merged_into TEXT NULL;
ALTER TABLE contacts ADD COLUMN tags JSONB NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN attributes JSONB NOT NULL DEFAULT '{}';
-- NULL until the profile first changes after creation.
ALTER TABLE contacts ADD COLUMN updated_at TIMESTAMPTZ NULL;
ALTER TABLE contacts ADD COLUMN erased_at TIMESTAMPTZ NULL;
ALTER TABLE contacts ADD COLUMN erased_by TEXT NULL;
-- The contacts merged into one (history, export, erasure walk them).
CREATE INDEX contacts_merged_into ON contacts (tenant_id, merged_into) WHERE merged_into IS NOT NULL;
-- The contact list, newest first.
CREATE INDEX contacts_created ON contacts (tenant_id, created_at, id);

-- A contact's conversations and sessions (merge, history, export,
-- erasure); UNIQUE (tenant_id, account_id, contact_id) does not lead with
-- the contact.
CREATE INDEX conversations_contact ON conversations (tenant_id, contact_id);
CREATE INDEX sessions_contact ON sessions (tenant_id, contact_id, created_at);

-- One row per merge. changes holds the identities and conversations that
-- moved, the conversations kept by the merged contact, and the survivor's
-- profile before and after (session.MergeChanges); erasure replaces it
-- with {"erased":true}.
CREATE TABLE contact_merges (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           TEXT NOT NULL,
    survivor_id  TEXT NOT NULL,
    merged_id    TEXT NOT NULL,
    reason       TEXT NOT NULL CHECK (reason IN ('union_id', 'phone', 'manual')),
    actor        TEXT NOT NULL,
    changes      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    undone_at    TIMESTAMPTZ NULL,
    undone_by    TEXT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, survivor_id) REFERENCES contacts(tenant_id, id),
    FOREIGN KEY (tenant_id, merged_id) REFERENCES contacts(tenant_id, id)
);
CREATE INDEX contact_merges_created ON contact_merges (tenant_id, created_at, id);
CREATE INDEX contact_merges_survivor ON contact_merges (tenant_id, survivor_id);
CREATE INDEX contact_merges_merged ON contact_merges (tenant_id, merged_id);

-- A tenant without a row uses the defaults (no automatic merges).
CREATE TABLE contact_settings (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants(id),
    auto_merge_union_id  BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at           TIMESTAMPTZ NOT NULL,
    updated_by           TEXT NULL
);
