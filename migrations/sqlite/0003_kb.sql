-- 0003: the knowledge base (DESIGN §6): FAQ entries with their change
-- history, keyword rules, per-tenant bot settings and KB revision, and the
-- unmatched-question bin. Also the bot outcome of a session, for bot
-- containment figures.
--
-- Variants, keywords, answers and samples are JSON columns, not child
-- tables: an entry is always read and written whole (the matcher and the
-- search index load every entry of a tenant, editors save a whole entry),
-- no query looks inside them (retrieval is the index's job, D9), and one
-- row per entry keeps a 20,000-entry import at one insert per entry instead
-- of one per variant.

CREATE TABLE kb_entries (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    question    TEXT NOT NULL,
    variants    TEXT NOT NULL DEFAULT '[]',
    answer      TEXT NOT NULL,
    keywords    TEXT NOT NULL DEFAULT '[]',
    category    TEXT NOT NULL DEFAULT '',
    language    TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL DEFAULT 1,
    version     INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    updated_by  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id)
);
-- EntryList orders by question in byte order (BINARY collation).
CREATE INDEX kb_entries_question ON kb_entries (tenant_id, question, id);
CREATE INDEX kb_entries_category ON kb_entries (tenant_id, category);

-- One row per change of an entry, kept after the entry is deleted (no
-- foreign key to kb_entries). seq orders the history, also across a delete
-- and a re-creation under the same id.
CREATE TABLE kb_entry_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    entry_id    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL DEFAULT '',
    at          TIMESTAMP NOT NULL,
    entry       TEXT NOT NULL
);
CREATE INDEX kb_entry_changes_entry ON kb_entry_changes (tenant_id, entry_id, seq);

CREATE TABLE kb_rules (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    keywords    TEXT NOT NULL DEFAULT '[]',
    priority    INTEGER NOT NULL DEFAULT 0,
    answer      TEXT NOT NULL,
    -- entry_id may dangle once the entry is deleted: the bot treats it as
    -- a miss, and the editor sees which rule to fix.
    entry_id    TEXT NOT NULL DEFAULT '',
    handoff     BOOLEAN NOT NULL DEFAULT 0,
    group_id    TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL DEFAULT 1,
    version     INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX kb_rules_order ON kb_rules (tenant_id, priority DESC, name, id);

-- A tenant without a row uses the defaults (kb.DefaultSettings).
CREATE TABLE kb_settings (
    tenant_id          TEXT PRIMARY KEY REFERENCES tenants(id),
    answer_threshold   REAL NOT NULL,
    suggest_threshold  REAL NOT NULL,
    handoff_words      TEXT NOT NULL DEFAULT '[]',
    max_misses         INTEGER NOT NULL,
    greeting           TEXT NOT NULL DEFAULT '',
    fallback_text      TEXT NOT NULL DEFAULT '',
    updated_at         TIMESTAMP NOT NULL
);

-- Bumped in the transaction of every write to entries, rules or settings;
-- nodes compare it with the revision their index was built from.
CREATE TABLE kb_revisions (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    revision   BIGINT NOT NULL
);

-- The unmatched-question bin: one row per normalised key, upserted by
-- every node that records a miss.
CREATE TABLE kb_misses (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    key         TEXT NOT NULL,
    text        TEXT NOT NULL,
    miss_count  INTEGER NOT NULL,
    first_seen  TIMESTAMP NOT NULL,
    last_seen   TIMESTAMP NOT NULL,
    samples     TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, key)
);
CREATE INDEX kb_misses_rank ON kb_misses (tenant_id, miss_count DESC, last_seen DESC, id);

-- How the bot part of a session ended: resolved, handed_off, abandoned
-- ('' while the bot still has it, or for sessions from before).
ALTER TABLE sessions ADD COLUMN bot_outcome TEXT NOT NULL DEFAULT '';
