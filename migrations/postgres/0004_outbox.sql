-- 0004: the durable outbox (DESIGN D8) and inbound dedupe on the provider's
-- message id.
--
-- An outbound message to a provider is written to outbox in the same
-- transaction as its messages row; workers on any node claim due rows, send
-- them and record the outcome (docs/outbox.md). Rows of one conversation
-- are sent in id order: a row is claimable only while no earlier row of its
-- conversation is pending or sending. An SMS fallback row (fallback_of set)
-- takes the place of the row it replaces in that order.
--
-- state: pending (waiting for next_at), sending (claimed by lease_owner
-- until lease_until; next_at = lease_until, so an expired lease is simply
-- due again), sent, dead. slot_at is a send slot the account's rate
-- limiter reserved for the row: claimed at or after it, the row is sent
-- without taking another slot. queued_at starts the row's maximum age; an
-- operator's requeue resets it (created_at stays).
CREATE TABLE outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    payload          JSONB NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    lease_owner      TEXT NOT NULL DEFAULT '',
    slot_at          TIMESTAMPTZ,
    last_code        TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    channel_msg_id   TEXT,
    fallback_of      BIGINT REFERENCES outbox(id) ON DELETE SET NULL,
    queued_at        TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    UNIQUE (tenant_id, message_id, account_id)
);
-- Claiming walks the live rows in next_at order. Partial: sent and dead
-- rows, the bulk of the table, stay out of the index the workers poll.
CREATE INDEX outbox_due ON outbox (next_at, id) WHERE state IN ('pending', 'sending');
-- "Is there an earlier live row in this conversation?" for every candidate.
CREATE INDEX outbox_conversation ON outbox (tenant_id, conversation_id, id) WHERE state IN ('pending', 'sending');
-- Delivery-status callbacks find the row by the provider's id.
CREATE INDEX outbox_channel_msg ON outbox (tenant_id, account_id, channel_msg_id) WHERE channel_msg_id IS NOT NULL;
-- The dead-letter list of a tenant, newest first.
CREATE INDEX outbox_dead ON outbox (tenant_id, id) WHERE state = 'dead';

-- A provider's message id is stored once per conversation: webhook retries
-- and re-pulled pages find the original (NULLs, e.g. web chat, are distinct).
CREATE UNIQUE INDEX messages_channel_msg ON messages (tenant_id, conversation_id, channel_msg_id);
