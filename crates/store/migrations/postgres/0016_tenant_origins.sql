-- PostgreSQL twin of sqlite/0016_tenant_origins.sql.
-- The CRM origins allowed to embed and drive a tenant's softphones, once an
-- agent of the tenant has signed in (issue 11). No row for a tenant: the
-- global `[embed] allowed_origins` applies. Origins are stored serialized
-- ("https://crm.example.com:8443"), validated by the API.
CREATE TABLE tenant_origins (
    tenant_id  BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- position in the admin's list: the first is where posts go by default
    position   BIGINT NOT NULL,
    origin     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, position),
    UNIQUE (tenant_id, origin)
);
