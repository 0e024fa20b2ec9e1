-- PostgreSQL twin of sqlite/0024_group_announce.sql.
-- The language a group's waiting callers are told their place in the
-- queue and their expected wait in (issue 10); NULL: music only.
ALTER TABLE agent_groups ADD COLUMN announce_lang TEXT
    CHECK (announce_lang IS NULL OR announce_lang IN ('en-US', 'es-MX', 'zh-CN'));
