-- PostgreSQL twin of sqlite/0004_call_dialog.sql.
-- The carrier dialog of a connected call, kept while the call is up, so
-- that after a crash the next start can send its BYE. NULL once ended.
ALTER TABLE calls ADD COLUMN dialog TEXT;
CREATE INDEX calls_open ON calls (hangup_ms) WHERE hangup_ms IS NULL;
