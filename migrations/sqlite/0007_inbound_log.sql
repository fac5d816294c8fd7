-- 0007: the inbound log (DESIGN D8, docs/channels.md "Inbound log").
--
-- A provider's webhook is answered once its messages are here: verified,
-- parsed and committed (many webhooks share one commit), then taken into
-- their conversations by the node that accepted them. A row is deleted
-- once its message is stored in its conversation; what is left is the
-- backlog.
--
-- dedupe_key is the provider's message id, or a unique token for messages
-- that have none: a provider's retry of a message still waiting here is
-- not written twice (a retry of one already taken is dropped by the
-- messages table's own unique index). payload is the normalised message
-- (channels.Inbound as JSON). next_at is when any node may take the row:
-- the accepting node leases it for itself until then, so a row whose node
-- died is taken over when the lease ends; a failed attempt sets it to a
-- backoff. attempts counts the takes; last_error is the last failure.
--
-- No foreign key to channel_accounts: every webhook's append would take a
-- share lock on its account's row, and concurrent appends for one account
-- would all contend for it. An account with entries here cannot be deleted
-- (channelsql.AccountDelete); an entry whose account is gone anyway is
-- dropped with a warning when taken.
CREATE TABLE inbound_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TIMESTAMP NOT NULL,
    received_at  TIMESTAMP NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_id, account_id, dedupe_key)
);
-- Taking over: the due rows, oldest first.
CREATE INDEX inbound_log_due ON inbound_log (next_at, seq);
