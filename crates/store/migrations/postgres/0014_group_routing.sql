-- PostgreSQL twin of sqlite/0014_group_routing.sql.
-- Queues per group (issue 10): how a group picks the agent an inbound call
-- rings, and after how many offers in a row left ringing an agent is set
-- to Busy (0: never). Existing groups keep today's behaviour.
ALTER TABLE agent_groups ADD COLUMN strategy TEXT NOT NULL DEFAULT 'longestIdle'
    CHECK (strategy IN ('longestIdle', 'roundRobin', 'fewestCalls'));
ALTER TABLE agent_groups ADD COLUMN max_missed BIGINT NOT NULL DEFAULT 3
    CHECK (max_missed >= 0);
