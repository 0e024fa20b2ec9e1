-- PostgreSQL twin of sqlite/0017_sso.sql.
-- A tenant's own OpenID Connect provider for the softphone's single sign-on
-- (issue 11). No row: the global `[sso]` provider of the configuration file
-- applies. The client secret is kept as given (the token request needs it
-- itself, so it cannot be hashed) and never shown by the API.
CREATE TABLE tenant_sso (
    tenant_id        BIGINT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    issuer           TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    client_secret    TEXT,
    -- JSON array of lower-case domains; empty: any
    allowed_domains  TEXT NOT NULL DEFAULT '[]'
);
