-- PostgreSQL twin of sqlite/0003_policy.sql.
-- Call policy per tenant: what a callOut must pass before anything is dialed.
CREATE TABLE tenant_policy (
    tenant_id                     BIGINT PRIMARY KEY REFERENCES tenants(id),
    -- prepaid balance; at or below zero the tenant is in arrears (810)
    balance_cents                 BIGINT NOT NULL DEFAULT 0,
    -- calling codes that may be dialed, comma-separated ("1,852"); empty: all (811)
    allowed_countries             TEXT NOT NULL DEFAULT '',
    -- a trial tenant may place trial_calls_per_day calls a day (817)
    trial                         BIGINT NOT NULL DEFAULT 0,
    trial_calls_per_day           BIGINT NOT NULL DEFAULT 10,
    -- calls to one number a day; 0: no limit (815)
    max_calls_per_callee_per_day  BIGINT NOT NULL DEFAULT 0
);

-- Numbers a tenant must never call (814).
CREATE TABLE blacklist (
    tenant_id  BIGINT NOT NULL REFERENCES tenants(id),
    number     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
