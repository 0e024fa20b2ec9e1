-- PostgreSQL twin of sqlite/0022_did_menus.sql (BLOB is BYTEA here).
-- Menus (IVR) per DID (issue 10): the menu as the admin API shows it
-- (JSON: options by key, each a group and an optional skill; the time to
-- choose; the default key), and each DID's prompt: 8 kHz mono 16-bit
-- samples, little-endian, as the admin's WAV file was converted.
ALTER TABLE dids ADD COLUMN menu TEXT CHECK (menu IS NULL OR length(menu) <= 4096);

CREATE TABLE did_prompts (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    number      TEXT NOT NULL,
    samples     BYTEA NOT NULL CHECK (length(samples) BETWEEN 2 AND 4800000),
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
