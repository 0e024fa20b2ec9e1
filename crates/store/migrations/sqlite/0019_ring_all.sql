-- Ring-all and skills (issue 10): a group may ring every available agent at
-- once, or pick by the level of the skill a call requires.
-- SQLite cannot change a column's CHECK in place, so the strategy moves to
-- a new column with the wider CHECK, keeping every group's value.
ALTER TABLE agent_groups ADD COLUMN acd_strategy TEXT NOT NULL DEFAULT 'longestIdle'
    CHECK (acd_strategy IN ('longestIdle', 'roundRobin', 'fewestCalls', 'ringAll', 'skills'));
UPDATE agent_groups SET acd_strategy = strategy;
ALTER TABLE agent_groups DROP COLUMN strategy;
ALTER TABLE agent_groups RENAME COLUMN acd_strategy TO strategy;
