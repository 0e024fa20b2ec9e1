-- PostgreSQL twin of sqlite/0019_ring_all.sql.
-- Ring-all and skills (issue 10): a group may ring every available agent at
-- once, or pick by the level of the skill a call requires.
-- The strategy moves to a new column with the wider CHECK, keeping every
-- group's value, as in SQLite (which cannot change a CHECK in place), so
-- that both databases end with the same columns in the same order.
ALTER TABLE agent_groups ADD COLUMN acd_strategy TEXT NOT NULL DEFAULT 'longestIdle'
    CHECK (acd_strategy IN ('longestIdle', 'roundRobin', 'fewestCalls', 'ringAll', 'skills'));
UPDATE agent_groups SET acd_strategy = strategy;
-- Drops the old column's CHECK with it.
ALTER TABLE agent_groups DROP COLUMN strategy;
ALTER TABLE agent_groups RENAME COLUMN acd_strategy TO strategy;
-- The CHECK keeps the name it was made with; give it the column's.
ALTER TABLE agent_groups RENAME CONSTRAINT agent_groups_acd_strategy_check TO agent_groups_strategy_check;
