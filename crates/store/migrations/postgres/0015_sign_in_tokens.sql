-- PostgreSQL twin of sqlite/0015_sign_in_tokens.sql.
-- One-time sign-in tokens a CRM's back end asks for (POST /api/v1/sign-in-tokens),
-- redeemed by the softphone instead of a password. Only the token's SHA-256
-- is kept; a row is deleted when redeemed, and purged once expired.
-- (Users can already be disabled: users.enabled, since 0001.)
CREATE TABLE sign_in_tokens (
    -- SHA-256 of the token, hex
    id          TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    -- ms since the Unix epoch
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sign_in_tokens_expiry ON sign_in_tokens(expires_at);
