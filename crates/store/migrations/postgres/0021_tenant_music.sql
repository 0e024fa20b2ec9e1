-- PostgreSQL twin of sqlite/0021_tenant_music.sql (BLOB is BYTEA here).
-- A tenant's own waiting music (issue 10): 8 kHz mono 16-bit samples,
-- little-endian, as the admin's file was converted; none: the built-in tune.
CREATE TABLE tenant_music (
    tenant_id   BIGINT PRIMARY KEY REFERENCES tenants(id),
    samples     BYTEA NOT NULL CHECK (length(samples) BETWEEN 2 AND 4800000),
    updated_ms  BIGINT NOT NULL
);
