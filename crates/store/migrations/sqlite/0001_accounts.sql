CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE agent_groups (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    group_no        TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- after-call work in seconds; 0 means none
    acw_seconds     INTEGER NOT NULL DEFAULT 0,
    -- agentStatus code a fresh sign-in starts from (1 idle, 2 busy)
    initial_status  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, group_no)
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants(id),
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    enabled        INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL
);

CREATE TABLE seats (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id),
    user_id       INTEGER UNIQUE REFERENCES users(id),
    sip_num       TEXT NOT NULL,
    group_id      INTEGER NOT NULL REFERENCES agent_groups(id),
    enabled       INTEGER NOT NULL DEFAULT 1,
    -- the status the agent last held, kept across server restarts
    agent_status  INTEGER,
    UNIQUE (tenant_id, sip_num)
);

CREATE TABLE sessions (
    -- SHA-256 of the token, hex; the token itself is never stored
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions(user_id);
