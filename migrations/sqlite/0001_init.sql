-- 0001: the core schema. Every table carries tenant_id (DESIGN D5).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE agents (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,
    username       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    max_sessions   INTEGER NOT NULL DEFAULT 3,
    state          TEXT NOT NULL DEFAULT 'offline',
    state_reason   TEXT NOT NULL DEFAULT '',
    state_since    TIMESTAMP NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT 0,
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username)
);

CREATE TABLE auth_tokens (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id)
);
CREATE INDEX auth_tokens_agent ON auth_tokens (tenant_id, agent_id);

CREATE TABLE skill_groups (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    id                TEXT NOT NULL,
    name              TEXT NOT NULL,
    strategy          TEXT NOT NULL DEFAULT 'longest_idle',
    sl_threshold_sec  INTEGER NOT NULL DEFAULT 20,
    max_queue         INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE agent_skills (
    tenant_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    proficiency  INTEGER NOT NULL DEFAULT 3,
    PRIMARY KEY (tenant_id, agent_id, group_id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES skill_groups(tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE channel_accounts (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    id                TEXT NOT NULL,
    type              TEXT NOT NULL,
    name              TEXT NOT NULL,
    public_key        TEXT NOT NULL UNIQUE,
    secret            TEXT NOT NULL,
    default_group_id  TEXT,
    settings          TEXT NOT NULL DEFAULT '{}',
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE contacts (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    vip_level     INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE identities (
    tenant_id    TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    contact_id   TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, account_id, external_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id)
);

-- A conversation is the lasting thread between one contact and one channel
-- account; sessions come and go inside it. Messages are numbered per
-- conversation (seq) so a client resumes exactly from the last seq it saw.
CREATE TABLE conversations (
    tenant_id           TEXT NOT NULL,
    id                  TEXT NOT NULL,
    account_id          TEXT NOT NULL,
    contact_id          TEXT NOT NULL,
    last_seq            BIGINT NOT NULL DEFAULT 0,
    contact_read_seq    BIGINT NOT NULL DEFAULT 0,
    agent_read_seq      BIGINT NOT NULL DEFAULT 0,
    current_session_id  TEXT,
    last_agent_id       TEXT,
    last_closed_at      TIMESTAMP,
    -- last_contact_at is the contact's latest message. It lives here, not on
    -- the session, so recording it is a HOT update of a row the message
    -- insert locks anyway; idle timers check it when they fire.
    last_contact_at     TIMESTAMP,
    created_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, account_id, contact_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id)
);

CREATE TABLE sessions (
    tenant_id         TEXT NOT NULL,
    id                TEXT NOT NULL,
    conversation_id   TEXT NOT NULL,
    contact_id        TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    channel           TEXT NOT NULL,
    state             TEXT NOT NULL,
    group_id          TEXT,
    agent_id          TEXT,
    priority          INTEGER NOT NULL DEFAULT 0,
    bot_misses        INTEGER NOT NULL DEFAULT 0,
    version           BIGINT NOT NULL DEFAULT 1,
    close_reason      TEXT NOT NULL DEFAULT '',
    reason_codes      TEXT NOT NULL DEFAULT '[]',
    reason_tree_version INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMP NOT NULL,
    queued_at         TIMESTAMP,
    assigned_at       TIMESTAMP,
    wrapup_at         TIMESTAMP,
    closed_at         TIMESTAMP,
    last_contact_at   TIMESTAMP NOT NULL,
    deadline_at       TIMESTAMP,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations(tenant_id, id)
);
CREATE INDEX sessions_state ON sessions (tenant_id, state);
CREATE INDEX sessions_agent ON sessions (tenant_id, agent_id, state);
CREATE INDEX sessions_deadline ON sessions (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX sessions_conversation ON sessions (tenant_id, conversation_id);

CREATE TABLE session_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    from_state  TEXT NOT NULL DEFAULT '',
    to_state    TEXT NOT NULL DEFAULT '',
    agent_id    TEXT,
    group_id    TEXT,
    actor       TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL DEFAULT '{}',
    at          TIMESTAMP NOT NULL
);
CREATE INDEX session_events_session ON session_events (tenant_id, session_id, id);
CREATE INDEX session_events_at ON session_events (tenant_id, at);

CREATE TABLE messages (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    direction        TEXT NOT NULL,
    sender_kind      TEXT NOT NULL,
    sender_id        TEXT NOT NULL DEFAULT '',
    type             TEXT NOT NULL,
    body             TEXT NOT NULL,
    client_msg_id    TEXT,
    channel_msg_id   TEXT,
    status           TEXT NOT NULL,
    error            TEXT NOT NULL DEFAULT '',
    pinned           BOOLEAN NOT NULL DEFAULT 0,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, conversation_id, seq),
    UNIQUE (tenant_id, conversation_id, client_msg_id)
);
CREATE INDEX messages_session ON messages (tenant_id, session_id, seq);

CREATE TABLE notes (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX notes_session ON notes (tenant_id, session_id);

-- The contact-reason tree is versioned: every save is a new row; wrap-ups
-- record the version they were chosen from.
CREATE TABLE reason_trees (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    version     INTEGER NOT NULL,
    tree        TEXT NOT NULL,
    mandatory   BOOLEAN NOT NULL DEFAULT 0,
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- Node-wide settings shared by every node (e.g. the key that signs visitor
-- tokens when none is configured).
CREATE TABLE server_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
