-- Billing (issue 9): each tenant's rates by destination, and what each
-- answered call was billed.
CREATE TABLE rates (
    tenant_id              INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The start of the E.164 numbers it applies to; the longest match wins.
    prefix                 TEXT NOT NULL,
    millicents_per_minute  INTEGER NOT NULL,
    first_secs             INTEGER NOT NULL,
    next_secs              INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, prefix)
);
ALTER TABLE calls ADD COLUMN billed_secs INTEGER;
ALTER TABLE calls ADD COLUMN cost_millicents INTEGER;
