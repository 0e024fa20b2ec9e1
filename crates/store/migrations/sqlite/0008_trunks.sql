-- A tenant's own carrier trunks (issue 8), added and changed through the
-- admin API while Seatline runs. The trunks of the configuration file are
-- shared by every tenant without trunks of its own and are not stored.
-- `settings` holds the trunk's settings as JSON, in the keys of the
-- configuration file's [[trunk]] table, its digest password included (a
-- digest answer needs the password itself, so it cannot be hashed).
CREATE TABLE trunks (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL DEFAULT 0,
    settings    TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
