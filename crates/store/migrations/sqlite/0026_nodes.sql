-- Nodes sharing one database (issue 12). Each node names itself
-- (`[cluster] node`) and beats here every second; when a node's beat is
-- older than the configured limit, one survivor marks it gone (`gone_ms`)
-- and closes the calls it carried. A single node on SQLite beats nowhere.
CREATE TABLE nodes (
    name          TEXT PRIMARY KEY,
    started_ms    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    -- 1 while the node drains: no new calls, its calls run to their end
    draining      INTEGER NOT NULL DEFAULT 0,
    -- when a survivor took over its calls; NULL while it lives
    gone_ms       INTEGER
);

-- The node that carried the call (NULL: written before 0026, by the one
-- node there was).
ALTER TABLE calls ADD COLUMN node TEXT;
