-- 0005: channel accounts managed through the API, many per channel type
-- ("matrix accounts", DESIGN §3).
--
-- credentials holds the provider credentials sealed by channels/secretbox,
-- "v1:<key id>:<base64>", bound to the tenant and account id; '' is none.
-- The key is configuration, never in the database, so a copy of the
-- database alone does not reveal them.
--
-- A disabled account keeps its row (history names it) but refuses its
-- webhooks; version counts updates for optimistic concurrency (ETag and
-- If-Match); updated_at is NULL until the first update.
ALTER TABLE channel_accounts ADD COLUMN credentials TEXT NOT NULL DEFAULT '';
ALTER TABLE channel_accounts ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE channel_accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE channel_accounts ADD COLUMN updated_at TIMESTAMPTZ NULL;

-- The read position of pull-based channels (WeCom customer service:
-- sync_msg's next_cursor), one per account, written once the messages of a
-- page are stored. It goes with its account.
CREATE TABLE channel_cursors (
    tenant_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    cursor      TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, account_id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES channel_accounts(tenant_id, id) ON DELETE CASCADE
);
